using System.Reflection;
using System.Security.Cryptography;
using Xunit.Sdk;
using PicoHsm.Devices.ScHsm.Formats;

namespace PicoHsm.Core.Tests;

// xunit v2 has no way to skip from inside a running test, so a test that cannot run on some
// machine says so in its attribute: the condition is checked when the tests are discovered, and
// the test is reported as skipped, with the reason, instead of passing without checking anything.

/// <summary>A [Fact] that only runs on Linux (skipped, with the reason, elsewhere).</summary>
public sealed class FactOnLinuxAttribute : FactAttribute
{
    public FactOnLinuxAttribute(string why)
    {
        if (!OperatingSystem.IsLinux()) Skip = "Linux only: " + why;
    }
}

/// <summary>A [Fact] that does not run on Windows (skipped, with the reason, there).</summary>
public sealed class FactNotOnWindowsAttribute : FactAttribute
{
    public FactNotOnWindowsAttribute(string why)
    {
        if (OperatingSystem.IsWindows()) Skip = "Not on Windows: " + why;
    }
}

/// <summary>
/// A theory row (curve name, key size) that is skipped, with the reason, when this platform's crypto
/// library cannot make keys on that curve.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
public sealed class CurveDataAttribute : DataAttribute
{
    private readonly object[] _row;

    public CurveDataAttribute(string curveName, int keySize)
    {
        _row = [curveName, keySize];
        try
        {
            using var ecdsa = ECDsa.Create(ScHsmCurve.FromName(curveName)!.ToECCurve());
        }
        catch (Exception e) when (e is PlatformNotSupportedException or CryptographicException)
        {
            Skip = $"this platform's crypto library lacks {curveName}: {e.Message}";
        }
    }

    public override IEnumerable<object[]> GetData(MethodInfo testMethod) => [_row];
}
