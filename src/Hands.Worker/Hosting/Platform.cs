// The worker runs in Linux sandboxes only: /bin/bash, stat(2), Unix file modes.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
