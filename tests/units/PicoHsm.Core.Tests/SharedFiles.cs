namespace PicoHsm.Core.Tests;

/// <summary>The APDU traces (tests/traces) and vectors (tests/vectors), located by <see cref="TestData"/>.</summary>
internal static class SharedFiles
{
    public static string TracesDir => TestData.TracesDir;

    public static string VectorsDir => TestData.VectorsDir;

    public static string Trace(string fileName) => TestData.Trace(fileName);

    public static string Vector(string fileName) => TestData.Vector(fileName);
}
