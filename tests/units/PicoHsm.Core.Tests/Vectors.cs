namespace PicoHsm.Core.Tests;

/// <summary>
/// The interoperability vectors (tests/vectors, made with the real Pico HSM firmware and sc-hsm-tool),
/// located by <see cref="TestData"/>; the values below are those of its MANIFEST.md.
/// </summary>
internal static class Vectors
{
    public static string Directory => TestData.VectorsDir;

    public static string PathOf(string name) => TestData.Vector(name);

    public static byte[] Read(string name) => TestData.ReadVector(name);

    public static byte[] Hex(string hex) => Convert.FromHexString(hex);

    // Values from MANIFEST.md.
    public const string Share1Hex = "50996a884581fd3cb5d836f12f071a192ad4a18ccc42518f2da80ebafd3375e6";
    public const string Share2Hex = "3ab0ffc72d26db6ea3cdab7dd3df3ae3f03c9ac65cef2d7ad33e4fbcbb61fa32";
    public const string DkekHex = "6a29954f68a7265216159d8cfcd820fadae83b4a90ad7cf5fe96410646528fd4";
    public const string KcvHex = "d5c1a339cd295797";
}
