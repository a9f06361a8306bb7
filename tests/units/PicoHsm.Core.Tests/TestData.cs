namespace PicoHsm.Core.Tests;

/// <summary>
/// The recorded test data inside this repository: <c>tests/vectors</c> (interoperability vectors made
/// with the real Pico HSM firmware and sc-hsm-tool; its MANIFEST.md describes them) and
/// <c>tests/traces</c> (OpenSC &lt;-&gt; Pico HSM APDU transcripts; INDEX.txt lists them). Both are
/// found from the repository root, the first folder above the test binaries that holds
/// <c>tests/vectors/MANIFEST.md</c>, so a plain clone tests itself and nothing outside it is read.
/// PICOHSM_VECTORS / PICOHSM_TRACES may name another copy of either folder.
/// </summary>
internal static class TestData
{
    private static readonly Lazy<string> Root = new(LocateRoot);
    private static readonly Lazy<string> VectorsFolder = new(() => Locate("PICOHSM_VECTORS", "vectors", "MANIFEST.md"));
    private static readonly Lazy<string> TracesFolder = new(() => Locate("PICOHSM_TRACES", "traces", "INDEX.txt"));

    /// <summary>The repository root (the folder holding tests/vectors/MANIFEST.md).</summary>
    public static string RepositoryRoot => Root.Value;

    public static string VectorsDir => VectorsFolder.Value;

    public static string TracesDir => TracesFolder.Value;

    /// <summary>The path of a file in tests/vectors.</summary>
    public static string Vector(string name) => Path.Combine(VectorsDir, name);

    /// <summary>The path of a file in tests/traces.</summary>
    public static string Trace(string name) => Path.Combine(TracesDir, name);

    public static byte[] ReadVector(string name) => File.ReadAllBytes(Vector(name));

    private static string Locate(string envVar, string folder, string marker)
    {
        string? env = Environment.GetEnvironmentVariable(envVar);
        if (!string.IsNullOrWhiteSpace(env))
        {
            if (File.Exists(Path.Combine(env, marker))) return Path.GetFullPath(env);
            throw new DirectoryNotFoundException($"{envVar}='{env}' has no {marker}.");
        }
        string dir = Path.Combine(RepositoryRoot, "tests", folder);
        if (!File.Exists(Path.Combine(dir, marker)))
            throw new DirectoryNotFoundException($"{Path.Combine(dir, marker)} is missing; the repository's test data is incomplete.");
        return dir;
    }

    private static string LocateRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "tests", "vectors", "MANIFEST.md"))) return dir.FullName;
        throw new DirectoryNotFoundException(
            $"No folder above {AppContext.BaseDirectory} holds tests/vectors/MANIFEST.md (the repository's test data); " +
            "run the tests from a clone of the repository, or set PICOHSM_VECTORS and PICOHSM_TRACES.");
    }
}
