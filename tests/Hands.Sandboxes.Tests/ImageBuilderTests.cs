using Hands.Sandboxes.Client;
using Hands.Sandboxes.Images;
using Hands.Testing;
using Microsoft.AspNetCore.Http;

namespace Hands.Sandboxes.Tests;

/// <summary>The image-build pipeline the CLI calls: the file format, and a build that stops at a failing step.</summary>
public sealed class ImageBuilderTests
{
    [Fact]
    public void The_file_parses_to_steps_and_a_dockerfile_and_a_bad_line_names_its_place()
    {
        var spec = ImageBuildFile.Parse("from base\n# comment\nrun apt-get update\nenv A=b=c\ncopy app /srv\nworkdir /srv\n", "img.txt");
        Assert.Equal("base", spec.From);
        Assert.Equal("FROM base\nRUN apt-get update\nENV A=b=c\nCOPY app /srv\nWORKDIR /srv", spec.ToDockerfile());
        var bad = Assert.Throws<FormatException>(() => ImageBuildFile.Parse("run a\nfrom late\n", "img.txt"));
        Assert.StartsWith("img.txt:2: 'from late' is not a step", bad.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failing_run_step_registers_nothing_and_the_builder_sandbox_is_deleted()
    {
        LoopbackStub? self = null;
        await using var stub = await LoopbackStub.StartAsync(async c =>
        {
            var route = $"{c.Request.Method} {c.Request.Path}";
            var sandbox = $$"""{"sandbox_id":"sbx_b","status":"running","sandbox_url":"{{self!.BaseAddress}}"}""";
            (c.Response.StatusCode, c.Response.ContentType, var body) = route switch
            {
                "POST /sandboxes" or "GET /sandboxes/sbx_b" => (200, "application/json", sandbox),
                "POST /api/v1/processes/run" => (200, "text/event-stream",
                    "data: {\"handle\":1,\"pid\":7,\"started_at\":1}\n\ndata: {\"line\":\"compiling\",\"timestamp\":1,\"stream\":\"stdout\"}\n\ndata: {\"exit_code\":2}\n\n"),
                "DELETE /sandboxes/sbx_b" => (200, "application/json", "{}"),
                _ => (404, "application/json", "{}"),
            };
            await c.Response.WriteAsync(body);
        });
        self = stub;
        using var client = new TensorlakeClient(new TensorlakeClientOptions
        {
            ApiUrl = new Uri("https://api.tensorlake.ai"),
            LifecycleUrl = stub.BaseAddress,
            ApiKey = "tl_apiKey_test",
            RetryBaseDelay = TimeSpan.FromMilliseconds(1),
            ProxyUrl = stub.BaseAddress,
        });
        var seen = new Recorder();

        var result = await new ImageBuilder(client).BuildAsync(ImageBuildFile.Parse("env A=1\nrun make\nrun never\n", "f"), "/", "img", seen);

        Assert.False(result.Registered);
        Assert.Equal(("make", 2), (result.FailedStep!.Argument, result.ExitCode));
        Assert.Equal(
            [new(1, 6, "starting a builder sandbox from the default image", false), new(2, 6, "env A 1", false), new(3, 6, "run make", false), new(3, 6, "compiling", true)],
            seen.Reports);
        Assert.Contains(stub.Requests, r => r is { Method: "DELETE", PathAndQuery: "/sandboxes/sbx_b" });
        Assert.DoesNotContain(stub.Requests, r => r.PathAndQuery.Contains("snapshot", StringComparison.Ordinal) || r.PathAndQuery.Contains("image", StringComparison.Ordinal));
    }

    /// <summary>Keeps every report in order (<see cref="Progress{T}"/> would hand them to the thread pool).</summary>
    private sealed class Recorder : IProgress<ImageBuildProgress>
    {
        public List<ImageBuildProgress> Reports { get; } = [];

        public void Report(ImageBuildProgress value) => Reports.Add(value);
    }
}
