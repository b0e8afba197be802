namespace Hands.SandboxDaemon.Endpoints;

/// <summary>
/// The file API: <c>/api/v1/files?path=</c> (read, write, delete) and <c>/api/v1/files/list?path=</c>. The daemon runs
/// inside the sandbox's root, so every path, symlinks included, resolves inside the sandbox; a <c>..</c> component is
/// refused outright (403 <c>PATH_TRAVERSAL</c>) as the reference daemon does.
/// </summary>
internal static class FileEndpoints
{
    public static void Map(WebApplication app)
    {
        app.MapGet("/api/v1/files", ctx => WithPath(ctx, ReadAsync));
        app.MapPut("/api/v1/files", ctx => WithPath(ctx, WriteAsync));
        app.MapDelete("/api/v1/files", ctx => WithPath(ctx, DeleteAsync));
        app.MapGet("/api/v1/files/list", ctx => WithPath(ctx, ListAsync));
    }

    private static Task WithPath(HttpContext ctx, Func<HttpContext, string, Task> action)
    {
        var path = ctx.Request.Query["path"].ToString();
        if (path.Length == 0)
        {
            return DaemonResponses.Error(ctx, 400, "INVALID_REQUEST", "the 'path' query parameter is required");
        }

        if (path.Split('/').Contains(".."))
        {
            return DaemonResponses.Error(ctx, 403, "PATH_TRAVERSAL", $"'{path}' contains a '..' component; use an absolute path without '..'");
        }

        return action(ctx, Path.GetFullPath(path, "/"));
    }

    private static async Task ReadAsync(HttpContext ctx, string path)
    {
        if (Directory.Exists(path))
        {
            await DaemonResponses.Error(ctx, 400, "IS_DIRECTORY", $"'{path}' is a directory; list it with /api/v1/files/list").ConfigureAwait(false);
            return;
        }

        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.Asynchronous | FileOptions.SequentialScan);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            await DaemonResponses.Error(ctx, 404, "NOT_FOUND", $"'{path}' does not exist").ConfigureAwait(false);
            return;
        }
        catch (UnauthorizedAccessException)
        {
            await DaemonResponses.Error(ctx, 403, "PERMISSION_DENIED", $"'{path}' cannot be read").ConfigureAwait(false);
            return;
        }

        await using (file)
        {
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = "application/octet-stream";
            if (file.CanSeek)
            {
                ctx.Response.ContentLength = file.Length;
            }

            await file.CopyToAsync(ctx.Response.Body, 81920, ctx.RequestAborted).ConfigureAwait(false);
        }
    }

    private static async Task WriteAsync(HttpContext ctx, string path)
    {
        if (Directory.Exists(path))
        {
            await DaemonResponses.Error(ctx, 400, "IS_DIRECTORY", $"'{path}' is a directory").ConfigureAwait(false);
            return;
        }

        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            await using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous);
            await ctx.Request.Body.CopyToAsync(file, 81920, ctx.RequestAborted).ConfigureAwait(false);
            // Durable before the answer: a snapshot taken right after must see the bytes.
            file.Flush(flushToDisk: true);
        }
        catch (IOException ex) when (ex is not FileNotFoundException)
        {
            await DaemonResponses.Error(ctx, 500, "INTERNAL_ERROR", $"cannot write '{path}': {ex.Message}").ConfigureAwait(false);
            return;
        }
        catch (UnauthorizedAccessException)
        {
            await DaemonResponses.Error(ctx, 403, "PERMISSION_DENIED", $"'{path}' cannot be written").ConfigureAwait(false);
            return;
        }

        await DaemonResponses.NoContent(ctx).ConfigureAwait(false);
    }

    private static Task DeleteAsync(HttpContext ctx, string path)
    {
        if (Directory.Exists(path))
        {
            return DaemonResponses.Error(ctx, 400, "IS_DIRECTORY", $"'{path}' is a directory; only files are deleted (run 'rm -r' as a process for a tree)");
        }

        if (!File.Exists(path) && !IsDanglingLink(path))
        {
            return DaemonResponses.Error(ctx, 404, "NOT_FOUND", $"'{path}' does not exist");
        }

        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return DaemonResponses.Error(ctx, 500, "INTERNAL_ERROR", $"cannot delete '{path}': {ex.Message}");
        }

        return DaemonResponses.NoContent(ctx);
    }

    private static Task ListAsync(HttpContext ctx, string path)
    {
        if (File.Exists(path))
        {
            return DaemonResponses.Error(ctx, 400, "NOT_A_DIRECTORY", $"'{path}' is a file, not a directory");
        }

        if (!Directory.Exists(path))
        {
            return DaemonResponses.Error(ctx, 404, "NOT_FOUND", $"'{path}' does not exist");
        }

        var entries = new DirectoryInfo(path).EnumerateFileSystemInfos()
            .Select(e => new EntryBody
            {
                Name = e.Name,
                IsDir = e is DirectoryInfo,
                Size = e is FileInfo f ? f.Length : null,
                ModifiedAt = e.Exists ? new DateTimeOffset(e.LastWriteTimeUtc).ToUnixTimeMilliseconds() : null,
            })
            .OrderByDescending(e => e.IsDir).ThenBy(e => e.Name, StringComparer.Ordinal)
            .ToList();
        return DaemonResponses.Json(ctx, 200, new ListingBody { Path = ctx.Request.Query["path"].ToString(), Entries = entries }, DaemonJsonContext.Default.ListingBody);
    }

    private static bool IsDanglingLink(string path) => new FileInfo(path).LinkTarget is not null;
}
