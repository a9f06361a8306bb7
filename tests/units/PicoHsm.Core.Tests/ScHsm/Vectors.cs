namespace PicoHsm.Core.Tests.ScHsm;

/// <summary>
/// Finds the shared interoperability vectors (made with the real Pico HSM firmware and sc-hsm-tool).
/// The repository is cloned with <c>shared/</c> as a sibling of its root (/work/main + /work/shared), so
/// walk up from the test binary until a directory holds <c>shared/vectors</c>. PICOHSM_VECTORS overrides.
/// </summary>
internal static class Vectors
{
    private static readonly Lazy<string> Dir = new(Locate);

    public static string Directory => Dir.Value;

    public static string PathOf(string name) => Path.Combine(Directory, name);

    public static byte[] Read(string name) => File.ReadAllBytes(PathOf(name));

    public static byte[] Hex(string hex) => Convert.FromHexString(hex);

    // Values from MANIFEST.md.
    public const string Share1Hex = "50996a884581fd3cb5d836f12f071a192ad4a18ccc42518f2da80ebafd3375e6";
    public const string Share2Hex = "3ab0ffc72d26db6ea3cdab7dd3df3ae3f03c9ac65cef2d7ad33e4fbcbb61fa32";
    public const string DkekHex = "6a29954f68a7265216159d8cfcd820fadae83b4a90ad7cf5fe96410646528fd4";
    public const string KcvHex = "d5c1a339cd295797";

    private static string Locate()
    {
        var env = Environment.GetEnvironmentVariable("PICOHSM_VECTORS");
        if (!string.IsNullOrWhiteSpace(env))
        {
            if (File.Exists(Path.Combine(env, "MANIFEST.md"))) return env;
            throw new DirectoryNotFoundException($"PICOHSM_VECTORS='{env}' has no MANIFEST.md.");
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "vectors");
            if (File.Exists(Path.Combine(candidate, "MANIFEST.md"))) return candidate;
        }
        throw new DirectoryNotFoundException(
            "No shared/vectors found above " + AppContext.BaseDirectory + "; set PICOHSM_VECTORS to the vectors folder.");
    }
}
