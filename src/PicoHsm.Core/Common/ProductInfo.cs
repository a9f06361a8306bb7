namespace PicoHsm.Common;

/// <summary>The product's name and version as written into the files it makes.</summary>
public static class ProductInfo
{
    /// <summary>"PicoHsm 0.1.0": the assembly version, which Directory.Build.props keeps equal to the manifest's ModuleVersion.</summary>
    public static string ToolVersion { get; } = "PicoHsm " + (typeof(ProductInfo).Assembly.GetName().Version?.ToString(3) ?? "0.0.0");
}
