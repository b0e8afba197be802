using System.Text.Json;
using Hands.Orchestrator;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hands.Orchestrator.Tests;

/// <summary>
/// The record of in-flight claims on its own: whole records in an owner-only directory, a later claim of an item never
/// removed by an earlier one's end, and anything in the directory that is not a record reported and cleared instead of
/// stopping the orchestrator's start.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
[Trait("Tier", "Unit")]
public sealed class ClaimRecordsTests : IDisposable
{
    private static readonly DateTimeOffset At = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"hands-claims-test-{Guid.NewGuid():N}", "env.lock.claims");

    public void Dispose()
    {
        if (Directory.Exists(Path.GetDirectoryName(_directory)))
        {
            Directory.Delete(Path.GetDirectoryName(_directory)!, recursive: true);
        }
    }

    [Fact]
    public void A_claim_is_one_owner_only_file_holding_its_ids_and_time_and_nothing_else()
    {
        var records = new ClaimRecords(_directory, NullLogger.Instance);
        records.Record("env_1", "work_1", "sesn_1", At);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_directory));
        var file = Assert.Single(Directory.GetFileSystemEntries(_directory));
        Assert.Equal("work_1.json", Path.GetFileName(file));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        using var json = JsonDocument.Parse(File.ReadAllText(file));
        Assert.Equal(new[] { "environment_id", "work_id", "session_id", "claimed_at" }, json.RootElement.EnumerateObject().Select(p => p.Name).ToArray());
        Assert.Equal(new ClaimRecord("env_1", "work_1", "sesn_1", At), Assert.Single(new ClaimRecords(_directory, NullLogger.Instance).ReadAll()));
    }

    [Fact]
    public void Rewriting_a_claim_replaces_the_whole_record_and_leaves_no_temporary_file()
    {
        var records = new ClaimRecords(_directory, NullLogger.Instance);
        records.Record("env_1", "work_1", "sesn_1", At);
        records.Record("env_1", "work_1", "sesn_1", At.AddMinutes(5));

        Assert.Equal(At.AddMinutes(5), Assert.Single(records.ReadAll()).ClaimedAt);
        Assert.Single(Directory.GetFileSystemEntries(_directory));
    }

    [Fact]
    public void A_spawn_that_ends_removes_its_own_record_but_not_a_later_claim_of_the_same_item()
    {
        var records = new ClaimRecords(_directory, NullLogger.Instance);
        var first = records.Record("env_1", "work_1", "sesn_1", At);
        var second = records.Record("env_1", "work_1", "sesn_1", At.AddSeconds(2));

        records.Remove(first);
        Assert.Equal(second, Assert.Single(records.ReadAll()));

        records.Remove(second);
        Assert.Empty(records.ReadAll());
        Assert.Empty(Directory.GetFileSystemEntries(_directory));
    }

    [Fact]
    public void Recovery_drops_a_predecessors_record_unless_this_orchestrator_has_claimed_the_item_since()
    {
        var predecessor = new ClaimRecords(_directory, NullLogger.Instance);
        predecessor.Record("env_1", "work_1", "sesn_1", At);
        predecessor.Record("env_1", "work_2", "sesn_2", At);

        var records = new ClaimRecords(_directory, NullLogger.Instance);
        records.Record("env_1", "work_2", "sesn_2", At.AddMinutes(1));
        records.Drop("work_1");
        records.Drop("work_2");

        Assert.Equal("work_2", Assert.Single(records.ReadAll()).WorkId);
    }

    [Fact]
    public void Torn_and_garbage_files_are_reported_and_removed_and_the_records_beside_them_are_read()
    {
        var records = new ClaimRecords(_directory, NullLogger.Instance);
        records.Record("env_1", "work_ok", "sesn_1", At);
        var whole = File.ReadAllText(Path.Combine(_directory, "work_ok.json"));
        File.WriteAllText(Path.Combine(_directory, "work_torn.json"), whole[..(whole.Length / 2)]);
        File.WriteAllBytes(Path.Combine(_directory, "work_garbage.json"), [0xff, 0xfe, 0x00, 0x42]);
        File.WriteAllText(Path.Combine(_directory, "work_noids.json"), """{"claimed_at":"2026-11-26T12:00:00Z"}""");
        File.WriteAllText(Path.Combine(_directory, "notes.txt"), "hello");
        File.WriteAllText(Path.Combine(_directory, "work_huge.json"), new string(' ', 10_000));
        // What a crash in the middle of a write leaves: the temporary file, never the record's own name.
        File.WriteAllText(Path.Combine(_directory, ".tmp-0123456789abcdef"), whole[..10]);
        Directory.CreateDirectory(Path.Combine(_directory, "work_dir.json"));
        File.CreateSymbolicLink(Path.Combine(_directory, "work_link.json"), Path.Combine(_directory, "work_ok.json"));
        var log = new RecordingLogger();

        var read = new ClaimRecords(_directory, log).ReadAll();

        Assert.Equal("work_ok", Assert.Single(read).WorkId);
        Assert.Equal(new[] { "work_ok.json" }, Directory.GetFileSystemEntries(_directory).Select(f => Path.GetFileName(f)).ToArray());
        foreach (var name in new[] { "work_torn.json", "work_garbage.json", "work_noids.json", "notes.txt", "work_huge.json", "work_dir.json", "work_link.json" })
        {
            Assert.True(log.Saw(LogLevel.Warning, $"ignoring {name} in the claims directory"), $"no warning for {name}");
        }
    }

    [Fact]
    public void A_work_id_that_is_not_a_plain_name_stays_inside_the_directory()
    {
        var records = new ClaimRecords(_directory, NullLogger.Instance);
        var record = records.Record("env_1", "../../escaped", "sesn_1", At);

        Assert.False(File.Exists(Path.Combine(_directory, "..", "..", "escaped.json")));
        Assert.Equal("../../escaped", Assert.Single(records.ReadAll()).WorkId);
        records.Remove(record);
        Assert.Empty(Directory.GetFileSystemEntries(_directory));
    }

    [Fact]
    public void An_existing_directory_is_made_owner_only_and_a_symbolic_link_in_its_place_is_refused()
    {
        Directory.CreateDirectory(_directory);
        File.SetUnixFileMode(_directory, (UnixFileMode)0x1ff);
        _ = new ClaimRecords(_directory, NullLogger.Instance);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_directory));

        var elsewhere = _directory + ".elsewhere";
        Directory.Move(_directory, elsewhere);
        Directory.CreateSymbolicLink(_directory, elsewhere);
        var refused = Assert.Throws<OrchestratorException>(() => new ClaimRecords(_directory, NullLogger.Instance));
        Assert.Contains("symbolic link", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_claims_directory_is_the_lock_files_path_plus_claims()
    {
        var path = Path.Combine(Path.GetTempPath(), $"hands-lock-test-{Guid.NewGuid():N}.lock");
        using (var held = OrchestratorLock.Acquire("env_1", "poll", path))
        {
            Assert.Equal(path + ".claims", held.ClaimsDirectory);
        }

        File.Delete(path);
    }
}
