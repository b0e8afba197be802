using Hands.Engine.Hosting;
using Microsoft.Extensions.Logging;

namespace Hands.Engine.Storage;

/// <summary>What a sandbox is built from: read-only layers (top first, base root last), host binds, and the image's ENV.</summary>
internal sealed record ResolvedImage(string Name, IReadOnlyList<string> Layers, IReadOnlyList<Runtime.BindMount> Binds, IReadOnlyDictionary<string, string> Env);

/// <summary>
/// Base images and registered images.
/// <list type="bullet">
/// <item><c>host</c>: a small skeleton root with the host's <c>/usr</c> (and <c>/etc/alternatives</c>, whose links <c>/usr</c> needs) bound read-only: instant, for tests and trying things.</item>
/// <item><c>debian</c> (aliases <c>debian-minimal</c>, <c>tensorlake/debian-minimal</c>): Debian 12 from
/// <c>debootstrap --variant=minbase</c> with bash, coreutils, ca-certificates, ripgrep and python3, built once and cached.</item>
/// <item>A registered name (<c>POST /platform/v1/sandbox-templates</c>): a filesystem snapshot on top of its base.</item>
/// </list>
/// Decision: <c>tensorlake/ubuntu-minimal</c>, the SDK's default, means the engine's default image; no Ubuntu is built here.
/// </summary>
internal sealed class ImageStore(EngineOptions options, EngineStore store, Runtime.SandboxIdentity identity, ILogger logger)
{
    public const string Host = "host";
    public const string Debian = "debian";

    private static readonly string[] DebianAliases = [Debian, "debian-minimal", "tensorlake/debian-minimal"];
    private static readonly string[] DefaultAliases = ["tensorlake/ubuntu-minimal", "ubuntu-minimal"];
    private readonly SemaphoreSlim _debianBuild = new(1, 1);

    private string HostRoot => Path.Combine(options.DataDirectory, "images", Host, "rootfs");

    /// <summary>debootstrap's result, owned by host ids.</summary>
    private string DebianBuildRoot => Path.Combine(options.ImageCacheDirectory, "debian-bookworm-minbase", "rootfs");

    /// <summary>What sandboxes stand on: the build itself, or with a user namespace a copy owned by the sandbox range.</summary>
    private string DebianRoot => identity.UserNamespace
        ? Path.Combine(options.ImageCacheDirectory, $"debian-bookworm-minbase-userns-{Runtime.SandboxIdentity.HostBase}", "rootfs")
        : DebianBuildRoot;

    public bool DebianReady => File.Exists(DebianRoot + ".complete");

    /// <summary>Writes the host skeleton (cheap, idempotent).</summary>
    public void PrepareHostBase()
    {
        var root = HostRoot;
        foreach (var dir in new[] { "etc", "root", "tmp", "var/tmp", "run", "proc", "sys", "dev", "usr", "opt/hands/bin", "workspace", "home/tl-user", "mnt" })
        {
            Directory.CreateDirectory(Path.Combine(root, dir));
        }

        File.SetUnixFileMode(Path.Combine(root, "tmp"), (UnixFileMode)0b1_111_111_111);
        File.SetUnixFileMode(Path.Combine(root, "var/tmp"), (UnixFileMode)0b1_111_111_111);
        foreach (var link in new[] { "bin", "sbin", "lib", "lib64" })
        {
            var path = Path.Combine(root, link);
            if (!Path.Exists(path) && new FileInfo(path).LinkTarget is null)
            {
                File.CreateSymbolicLink(path, "usr/" + link);
            }
        }

        WriteEtc(root);
        // Sandbox root owns its own skeleton (host root without --userns); tl-user its home.
        foreach (var entry in Directory.EnumerateFileSystemEntries(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }).Append(root))
        {
            identity.Own(entry);
        }

        identity.Own(Path.Combine(root, "home/tl-user"), 1000);
    }

    /// <summary>Accounts and name service files every sandbox gets; no host file is copied (nothing of the host's leaks in).</summary>
    private static void WriteEtc(string root)
    {
        var etc = Path.Combine(root, "etc");
        File.WriteAllText(Path.Combine(etc, "passwd"), "root:x:0:0:root:/root:/bin/bash\ntl-user:x:1000:1000:sandbox user:/home/tl-user:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
        File.WriteAllText(Path.Combine(etc, "group"), "root:x:0:\ntl-user:x:1000:\nnogroup:x:65534:\n");
        File.WriteAllText(Path.Combine(etc, "hosts"), "127.0.0.1 localhost\n::1 localhost\n");
        File.WriteAllText(Path.Combine(etc, "nsswitch.conf"), "passwd: files\ngroup: files\nhosts: files dns\n");
        File.WriteAllText(Path.Combine(etc, "resolv.conf"), "");
    }

    /// <summary>Resolves an image name; 400 with the known names when it is unknown or not built yet.</summary>
    public ResolvedImage Resolve(string? requested)
    {
        var name = string.IsNullOrEmpty(requested) || DefaultAliases.Contains(requested) ? options.DefaultImage : requested;
        if (name == Host)
        {
            return new ResolvedImage(Host, [HostRoot], [new Runtime.BindMount("/usr", "/usr"), new Runtime.BindMount("/etc/alternatives", "/etc/alternatives")], new Dictionary<string, string>());
        }

        if (DebianAliases.Contains(name))
        {
            if (!DebianReady)
            {
                throw new EngineException(400, $"image '{name}' is not built yet; build it once with 'hands image base debian' (or start the engine with --prepare-debian), or use image 'host'");
            }

            return new ResolvedImage(Debian, [DebianRoot], [], new Dictionary<string, string>());
        }

        var registered = store.Images().FirstOrDefault(i => i.Name == name);
        var snapshot = registered is null ? null : store.Snapshots().FirstOrDefault(s => s.Id == registered.SnapshotId);
        if (registered is null || snapshot is null)
        {
            var known = string.Join(", ", new[] { Host, Debian }.Concat(store.Images().Select(i => i.Name)));
            throw new EngineException(400, $"unknown image '{name}'; known images: {known}");
        }

        var baseImage = Resolve(snapshot.Image);
        return new ResolvedImage(name, snapshot.Layers, baseImage.Binds, SettingsOf(registered.Dockerfile, snapshot.ImageEnv));
    }

    public IReadOnlyList<ImageRecord> Registered() => store.Images();

    public void Register(ImageRecord image) => store.Save(image);

    public bool Unregister(string name)
    {
        if (store.Images().All(i => i.Name != name))
        {
            return false;
        }

        store.DeleteImage(name);
        return true;
    }

    /// <summary>
    /// The image's ENV lines, and its last WORKDIR as the daemon's default working directory
    /// (<c>HANDS_SANDBOXD_WORKDIR</c>, which processes do not inherit).
    /// </summary>
    private static Dictionary<string, string> SettingsOf(string? dockerfile, IReadOnlyDictionary<string, string> inherited)
    {
        var env = new Dictionary<string, string>(inherited);
        foreach (var line in (dockerfile ?? "").Split('\n').Select(l => l.Trim()))
        {
            if (line.StartsWith("ENV ", StringComparison.OrdinalIgnoreCase) && line[4..].Trim() is var pair && pair.IndexOf('=', StringComparison.Ordinal) is > 0 and var eq)
            {
                env[pair[..eq]] = pair[(eq + 1)..];
            }
            else if (line.StartsWith("WORKDIR ", StringComparison.OrdinalIgnoreCase))
            {
                env["HANDS_SANDBOXD_WORKDIR"] = line[8..].Trim();
            }
        }

        return env;
    }

    /// <summary>
    /// Builds the <c>debian</c> base with debootstrap into a temporary directory and renames it into place, so an
    /// interrupted build leaves nothing that looks usable. Takes a minute or two; progress goes to the log.
    /// </summary>
    public async Task EnsureDebianAsync(CancellationToken cancellationToken)
    {
        if (DebianReady)
        {
            return;
        }

        await _debianBuild.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (DebianReady)
            {
                return;
            }

            if (!File.Exists(DebianBuildRoot + ".complete"))
            {
                await BuildDebianAsync(cancellationToken).ConfigureAwait(false);
            }

            if (identity.UserNamespace)
            {
                await ShiftDebianAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _debianBuild.Release();
        }
    }

    /// <summary>A copy of the debian base owned by the sandbox id range, made once next to the build (cp, then chown).</summary>
    private async Task ShiftDebianAsync(CancellationToken cancellationToken)
    {
        var target = DebianRoot;
        var building = target + ".building";
        if (Directory.Exists(building))
        {
            Directory.Delete(building, recursive: true);
        }

        // Owned by the sandbox range, so closed to it: only the engine (and overlay, with its credentials) reads it.
        OwnerOnlyDirectory.Ensure(Path.GetDirectoryName(target)!);
        logger.LogInformation("copying the debian base for user-namespaced sandboxes (once)");
        await CommandRunner.RunCheckedAsync("cp", ["-a", DebianBuildRoot, building], cancellationToken: cancellationToken).ConfigureAwait(false);
        await identity.ShiftTreeAsync(building, cancellationToken).ConfigureAwait(false);
        if (Directory.Exists(target))
        {
            Directory.Delete(target, recursive: true);
        }

        Directory.Move(building, target);
        await File.WriteAllTextAsync(target + ".complete", DateTimeOffset.UtcNow.ToString("O"), cancellationToken).ConfigureAwait(false);
    }

    private async Task BuildDebianAsync(CancellationToken cancellationToken)
    {
        var target = DebianBuildRoot;
        var building = target + ".building";
        if (Directory.Exists(building))
        {
            Directory.Delete(building, recursive: true);
        }

        Directory.CreateDirectory(building);
        logger.LogInformation("building the debian base image with debootstrap from {Mirror} (once; about a minute)", options.DebianMirror);
        await CommandRunner.RunCheckedAsync("debootstrap",
            ["--variant=minbase", "--include=bash,coreutils,ca-certificates,ripgrep,python3,procps,iproute2", "bookworm", building, options.DebianMirror],
            cancellationToken: cancellationToken).ConfigureAwait(false);
        Directory.CreateDirectory(Path.Combine(building, "opt/hands/bin"));
        Directory.CreateDirectory(Path.Combine(building, "workspace"));
        Directory.CreateDirectory(Path.Combine(building, "home/tl-user"));
        Native.LChown(Path.Combine(building, "home/tl-user"), 1000, 1000);
        WriteEtcAccounts(building);
        if (Directory.Exists(target))
        {
            Directory.Delete(target, recursive: true);
        }

        Directory.Move(building, target);
        await File.WriteAllTextAsync(target + ".complete", DateTimeOffset.UtcNow.ToString("O"), cancellationToken).ConfigureAwait(false);
        logger.LogInformation("the debian base image is ready at {Path}", target);
    }

    private static void WriteEtcAccounts(string root)
    {
        var passwd = Path.Combine(root, "etc/passwd");
        if (!File.ReadAllText(passwd).Contains("tl-user:", StringComparison.Ordinal))
        {
            File.AppendAllText(passwd, "tl-user:x:1000:1000:sandbox user:/home/tl-user:/bin/bash\n");
            File.AppendAllText(Path.Combine(root, "etc/group"), "tl-user:x:1000:\n");
        }

        File.WriteAllText(Path.Combine(root, "etc/resolv.conf"), "");
    }
}
