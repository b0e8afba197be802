using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Hands.Worker.Tools;

/// <summary>The file type from stat(2): .NET cannot tell a regular file from a FIFO or a device, and opening a FIFO blocks.</summary>
internal static partial class UnixFiles
{
    public enum Kind
    {
        Missing,
        Regular,
        Directory,
        Other,
    }

    /// <summary>The kind of file at <paramref name="path"/>; throws <see cref="IOException"/> with the errno's reason when stat fails.</summary>
    public static Kind KindOf(string path)
    {
        var buffer = new byte[256];
        if (Stat(path, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw errno == 2 ? new FileNotFoundException(path) : new IOException(FsErrors.ReasonOf(errno), errno);
        }

        // st_mode is at offset 24 on x86-64 (after st_dev, st_ino, st_nlink) and 16 on arm64 (st_mode before st_nlink).
        var offset = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 16 : 24;
        var mode = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(offset, 4)) & 0xF000;
        return mode switch
        {
            0x8000 => Kind.Regular,
            0x4000 => Kind.Directory,
            _ => Kind.Other,
        };
    }

    [LibraryImport("libc", EntryPoint = "stat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Stat(string path, [Out] byte[] buffer);
}
