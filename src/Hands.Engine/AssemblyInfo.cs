using System.Runtime.Versioning;

// runc, overlayfs, network namespaces and CRIU: the engine exists only on Linux.
[assembly: SupportedOSPlatform("linux")]
