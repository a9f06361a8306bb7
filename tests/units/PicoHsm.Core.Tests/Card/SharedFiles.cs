namespace PicoHsm.Core.Tests.Card;

/// <summary>
/// Finds the team's shared/ folder (reference traces, vectors). PICOHSM_SHARED overrides (the shared
/// folder itself, or a folder that contains shared/); otherwise walk up from the test binaries to the
/// first folder that holds shared/reference. That covers both the dev layout (/work/shared next to the
/// worktrees) and CI (the repository cloned with shared/ as a sibling of its root).
/// </summary>
internal static class SharedFiles
{
    private static readonly Lazy<string> Root = new(Locate);

    public static string SharedRoot => Root.Value;

    public static string TracesDir => Path.Combine(SharedRoot, "reference", "apdu-traces");

    public static string VectorsDir => Path.Combine(SharedRoot, "vectors");

    public static string Trace(string fileName) => Path.Combine(TracesDir, fileName);

    public static string Vector(string fileName) => Path.Combine(VectorsDir, fileName);

    private static string Locate()
    {
        string? env = Environment.GetEnvironmentVariable("PICOHSM_SHARED");
        if (!string.IsNullOrWhiteSpace(env))
        {
            if (Directory.Exists(Path.Combine(env, "reference"))) return Path.GetFullPath(env);
            if (Directory.Exists(Path.Combine(env, "shared", "reference"))) return Path.GetFullPath(Path.Combine(env, "shared"));
            throw new DirectoryNotFoundException($"PICOHSM_SHARED={env} holds neither reference/ nor shared/reference/.");
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "shared");
            if (Directory.Exists(Path.Combine(candidate, "reference"))) return candidate;
        }
        throw new DirectoryNotFoundException(
            $"No shared/reference folder above {AppContext.BaseDirectory}; set PICOHSM_SHARED to the shared folder.");
    }
}
