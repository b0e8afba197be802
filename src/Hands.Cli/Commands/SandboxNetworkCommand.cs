using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;
using Spectre.Console;

namespace Hands.Cli.Commands;

/// <summary>
/// <c>hands sandbox network SB [events|destinations|status]</c>: what the provider observed of a sandbox's network
/// (<c>tl sbx network</c>'s three reads), also after the sandbox terminated. A table by default, the server's JSON with
/// <c>--json</c>.
/// </summary>
internal static class SandboxNetworkCommand
{
    private static readonly string[] Views = ["events", "destinations", "status"];

    public static Command Create()
    {
        var sandbox = new Argument<string>("sandbox") { Description = "Sandbox id or name (terminated ones too)" };
        var view = new Argument<string>("view") { Description = "events (default), destinations or status", DefaultValueFactory = _ => "events" };
        view.AcceptOnlyFromAmong(Views);
        var from = new Option<string?>("--from") { Description = "Start of the window: Unix ms, an ISO 8601 time, or an age like 15m, 2h, 1d (default: an hour before --to)" };
        var to = new Option<string?>("--to") { Description = "End of the window, as --from (default: now)" };
        var limit = new Option<int?>("--limit") { Description = "Events per page, or destinations shown: 1 to 500 (default 100)" };
        var cursor = new Option<string?>("--cursor") { Description = "Continue events from a previous page's next cursor" };
        var all = new Option<bool>("--all") { Description = "Events: follow every page, not just the first" };
        var json = new Option<bool>("--json") { Description = "Print the server's JSON" };
        var command = new Command("network", "Observed connections, policy decisions and capture status of a sandbox") { sandbox, view, from, to, limit, cursor, all, json };
        command.SetAction(async (parse, ct) =>
        {
            var now = DateTimeOffset.UtcNow;
            var query = new NetworkQuery
            {
                FromMs = TimeArgument.ParseMs(parse.GetValue(from), "--from", now),
                ToMs = TimeArgument.ParseMs(parse.GetValue(to), "--to", now),
                Limit = parse.GetValue(limit) is { } l && l is < 1 or > 500 ? throw new CliException("--limit must be from 1 to 500") : parse.GetValue(limit),
                Cursor = parse.GetValue(cursor),
            };
            var id = parse.GetValue(sandbox)!;
            using var client = SandboxClientFactory.Create();
            switch (parse.GetValue(view))
            {
                case "destinations":
                    if (query.Cursor is not null || parse.GetValue(all))
                    {
                        throw new CliException("--cursor and --all apply only to network events");
                    }

                    var destinations = await client.GetNetworkDestinationsAsync(id, query, ct);
                    if (parse.GetValue(json))
                    {
                        Console.WriteLine(JsonSerializer.Serialize(destinations, SandboxesJsonContext.Default.NetworkDestinationsResponse));
                        return 0;
                    }

                    PrintDestinations(destinations);
                    return 0;
                case "status":
                    var status = await client.GetNetworkStatusAsync(id, ct);
                    if (parse.GetValue(json))
                    {
                        Console.WriteLine(JsonSerializer.Serialize(status, SandboxesJsonContext.Default.NetworkCaptureStatus));
                        return 0;
                    }

                    PrintStatus(status);
                    return 0;
                default:
                    var pages = client.GetNetworkEventsPageable(id, query).AsPages(cancellationToken: ct);
                    var events = new List<NetworkEvent>();
                    string? next = null;
                    await foreach (var page in pages)
                    {
                        if (parse.GetValue(json) && !parse.GetValue(all))
                        {
                            Console.WriteLine(JsonSerializer.Serialize(page, SandboxesJsonContext.Default.NetworkEventsResponse));
                            return 0;
                        }

                        events.AddRange(page.Events);
                        next = page.NextCursor;
                        if (!parse.GetValue(all))
                        {
                            break;
                        }
                    }

                    if (parse.GetValue(json))
                    {
                        Console.WriteLine(JsonSerializer.Serialize(new NetworkEventsResponse { Events = events, FromMs = query.FromMs ?? 0, ToMs = query.ToMs ?? now.ToUnixTimeMilliseconds() },
                            SandboxesJsonContext.Default.NetworkEventsResponse));
                        return 0;
                    }

                    PrintEvents(events, next);
                    return 0;
            }
        });
        return command;
    }

    private static void PrintEvents(List<NetworkEvent> events, string? next)
    {
        var table = new Table().AddColumns("TIME", "KIND", "SOURCE", "ACTION", "DESTINATION", "SENT", "RECEIVED", "DETAIL");
        foreach (var e in events)
        {
            var destination = e.DestinationIp.Length == 0 ? "-" : e.DestinationPort > 0 ? $"{e.DestinationIp}:{e.DestinationPort}/{e.Transport}" : $"{e.DestinationIp} ({e.Transport})";
            table.AddRow(Time(e.ObservedAtMs), Printable(e.EventKind), Printable(e.ObservationSource), Printable(e.PolicyAction ?? "-"), Printable(destination),
                Bytes(e.OriginalBytes), Bytes(e.ReplyBytes), Printable(e.DnsName is { } name ? $"{name} → {string.Join(',', e.DnsAnswers)}" : e.Detail));
        }

        Output.Table(table);
        if (events.Count == 0)
        {
            Console.Error.WriteLine("No observations in the window. Check 'status' before reading this as no traffic.");
        }

        if (next is not null)
        {
            Console.Error.WriteLine($"More events: --cursor {next} (or --all)");
        }
    }

    private static void PrintDestinations(NetworkDestinationsResponse response)
    {
        var table = new Table().AddColumns("DESTINATION", "TRANSPORT", "CONNECTIONS", "SENT", "RECEIVED", "UNKNOWN BYTES", "DEGRADED");
        foreach (var d in response.Destinations)
        {
            table.AddRow(Printable($"{d.DestinationIp}:{d.DestinationPort}"), Printable(d.Transport), d.ObservedConnections.ToString(CultureInfo.InvariantCulture),
                Bytes(d.OriginalBytes), Bytes(d.ReplyBytes), d.UnknownByteConnections.ToString(CultureInfo.InvariantCulture), d.DegradedConnections.ToString(CultureInfo.InvariantCulture));
        }

        Output.Table(table);
        Console.Error.WriteLine($"Window {Time(response.FromMs)} to {Time(response.ToMs)} (whole minutes). Connections are not requests.");
        if (response.Truncated)
        {
            Console.Error.WriteLine("More destinations than --limit: narrow the window or raise --limit.");
        }
    }

    private static void PrintStatus(NetworkCaptureStatus status)
    {
        var table = new Table().AddColumns("STATE", "LAST OBSERVED", "ALLOCATION", "COVERAGE");
        table.AddRow(Printable(status.State), status.LastObservedAtMs is { } last ? Time(last) : "-", Printable(status.AllocationId ?? "-"),
            Printable(status.Coverage.Count == 0 ? "-" : string.Join(", ", status.Coverage)));
        Output.Table(table);
        foreach (var limitation in status.Limitations)
        {
            Console.WriteLine($"- {Printable(limitation)}");
        }
    }

    private static string Time(long ms) =>
        DateTimeOffset.FromUnixTimeMilliseconds(ms).ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture);

    private static string Bytes(long? bytes) => bytes?.ToString(CultureInfo.InvariantCulture) ?? "unknown";

    /// <summary>
    /// A server's string made safe for a terminal: control characters (escape sequences, carriage returns) become
    /// U+FFFD, then Spectre's markup is escaped. On Tensorlake's cloud a DNS name is the sandbox's own choice, and a
    /// hostile one must not rewrite the operator's screen.
    /// </summary>
    internal static string Printable(string? value) =>
        Markup.Escape(value is null ? "" : string.Concat(value.Select(c => char.IsControl(c) ? '\uFFFD' : c)));
}
