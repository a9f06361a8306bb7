using System.Text.RegularExpressions;

namespace PicoHsm.Core.Tests;

/// <summary>
/// The layering docs/architecture.md describes, enforced: every file of the core may import only
/// the rooms below its own, each file's namespace matches its folder, and no file is over 500
/// lines (the P/Invoke declarations of one ABI excepted, as their header says).
/// </summary>
public class ArchitectureTests
{
    /// <summary>Each room of src/PicoHsm.Core and the rooms it may import (besides itself).</summary>
    private static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["PicoHsm.Common"] = [],
        // Polyfills of the netstandard2.0 (Desktop) build; below every room, imported by none.
        ["PicoHsm.Compat"] = [],
        ["PicoHsm.Keys"] = ["PicoHsm.Common"],
        ["PicoHsm.Dkek"] = ["PicoHsm.Common", "PicoHsm.Keys"],
        ["PicoHsm.PcSc"] = ["PicoHsm.Common"],
        ["PicoHsm.Devices.ScHsm.Formats"] = ["PicoHsm.Common", "PicoHsm.Keys"],
        ["PicoHsm.Devices.ScHsm.Shares"] = ["PicoHsm.Common", "PicoHsm.Keys", "PicoHsm.Dkek", "PicoHsm.Devices.ScHsm.Formats"],
        ["PicoHsm.Devices.ScHsm.Card"] = ["PicoHsm.Common", "PicoHsm.Keys", "PicoHsm.PcSc", "PicoHsm.Devices.ScHsm.Formats"],
        ["PicoHsm.Backup"] = ["PicoHsm.Common", "PicoHsm.Keys", "PicoHsm.Dkek", "PicoHsm.Devices.ScHsm.Formats", "PicoHsm.Devices.ScHsm.Shares"],
        ["PicoHsm.Devices"] = ["PicoHsm.Common", "PicoHsm.Keys", "PicoHsm.Dkek", "PicoHsm.Backup"],
        ["PicoHsm.Devices.Pkcs11"] = ["PicoHsm.Common", "PicoHsm.Keys", "PicoHsm.Dkek", "PicoHsm.Backup", "PicoHsm.Devices"],
        ["PicoHsm.Devices.ScHsm.Backend"] = ["PicoHsm.Common", "PicoHsm.Keys", "PicoHsm.Dkek", "PicoHsm.Backup", "PicoHsm.Devices", "PicoHsm.PcSc",
            "PicoHsm.Devices.Pkcs11", "PicoHsm.Devices.ScHsm.Card", "PicoHsm.Devices.ScHsm.Formats", "PicoHsm.Devices.ScHsm.Shares"],
        ["PicoHsm.Session"] = ["PicoHsm.Common", "PicoHsm.Keys", "PicoHsm.Dkek", "PicoHsm.Backup", "PicoHsm.Devices", "PicoHsm.PcSc",
            "PicoHsm.Devices.Pkcs11", "PicoHsm.Devices.ScHsm.Card", "PicoHsm.Devices.ScHsm.Formats", "PicoHsm.Devices.ScHsm.Shares", "PicoHsm.Devices.ScHsm.Backend"],
    };

    /// <summary>Operations may use everything below it; the cmdlet layer everything but the concrete backends.</summary>
    private static readonly string[] Everything = Allowed.Keys.Append("PicoHsm.Operations").ToArray();

    private static string SrcRoot => Path.Combine(TestData.RepositoryRoot, "src");

    private static IEnumerable<string> SourceFiles(string project) =>
        Directory.EnumerateFiles(Path.Combine(SrcRoot, project), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"));

    private static string Namespace(string text) => Regex.Match(text, @"^namespace\s+([\w.]+)\s*;", RegexOptions.Multiline).Groups[1].Value;

    /// <summary>The PicoHsm rooms a file names: its using directives and any fully qualified PicoHsm.X.Y reference.</summary>
    private static IEnumerable<string> Imports(string text)
    {
        string code = Regex.Replace(text, @"//.*", "");
        foreach (Match m in Regex.Matches(code, @"^using\s+(?:static\s+)?(PicoHsm(?:\.\w+)+)\s*;", RegexOptions.Multiline))
            yield return RoomOf(m.Groups[1].Value);
    }

    /// <summary>"PicoHsm.Devices.Pkcs11.Pkcs11KeyStore" (a using static) or a namespace: the longest known room it starts with.</summary>
    private static string RoomOf(string name) =>
        Everything.Concat(["PicoHsm.Module", "PicoHsm.Module.Commands", "PicoHsm.Module.Completers"])
            .Where(r => name == r || name.StartsWith(r + ".", StringComparison.Ordinal)).OrderByDescending(r => r.Length).FirstOrDefault() ?? name;

    /// <summary>A Compat/ file that stands in for a BCL type the compiler looks up by its full name (RuntimeHelpers).</summary>
    private static bool IsBclPolyfill(string file, string ns) =>
        ns.StartsWith("System.", StringComparison.Ordinal)
        && Path.GetFileName(Path.GetDirectoryName(file)) == "Compat";

    [Fact]
    public void EveryCoreFile_ImportsOnlyTheRoomsBelowItsOwn()
    {
        var violations = new List<string>();
        foreach (string file in SourceFiles("PicoHsm.Core"))
        {
            string text = File.ReadAllText(file), own = Namespace(text);
            if (own == "PicoHsm.Operations") continue; // the top of the core may use every room
            if (IsBclPolyfill(file, own)) continue;
            if (!Allowed.TryGetValue(own, out var allowed)) { violations.Add($"{file}: namespace '{own}' is no room of the architecture"); continue; }
            foreach (string room in Imports(text).Distinct())
                if (room != own && !allowed.Contains(room))
                    violations.Add($"{Path.GetRelativePath(SrcRoot, file)} ({own}) imports {room}");
        }
        Assert.True(violations.Count == 0, string.Join("\n", violations));
    }

    [Fact]
    public void EveryCoreFile_DeclaresTheNamespaceOfItsFolder()
    {
        string core = Path.Combine(SrcRoot, "PicoHsm.Core");
        var wrong = SourceFiles("PicoHsm.Core")
            .Select(f => (File: f, Expected: "PicoHsm" + string.Concat(Path.GetRelativePath(core, Path.GetDirectoryName(f)!).Split(Path.DirectorySeparatorChar).Where(p => p != ".").Select(p => "." + p)), Actual: Namespace(File.ReadAllText(f))))
            .Where(x => x.Expected != x.Actual && !IsBclPolyfill(x.File, x.Actual))
            .Select(x => $"{Path.GetRelativePath(SrcRoot, x.File)}: {x.Actual}, expected {x.Expected}").ToList();
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Fact]
    public void TheCmdletLayer_NamesNoConcreteBackend()
    {
        var hits = SourceFiles("PicoHsm")
            .SelectMany(f => File.ReadLines(f).Select((l, i) => (f, i, l)))
            .Where(x => Regex.IsMatch(x.l, @"\b(ScHsmCardBackend|Pkcs11DkekBackend|KeyServices|BackendFor|Attachment)\b") ||
                        Regex.IsMatch(x.l, @"^using\s+PicoHsm\.Devices\.(Pkcs11|ScHsm\.Backend)\s*;"))
            .Select(x => $"{Path.GetRelativePath(SrcRoot, x.f)}:{x.i + 1}: {x.l.Trim()}").ToList();
        Assert.True(hits.Count == 0, string.Join("\n", hits));
    }

    [Fact]
    public void NoSourceFile_IsOver500Lines_ButOneAbisDeclarations()
    {
        var big = SourceFiles("PicoHsm.Core").Concat(SourceFiles("PicoHsm"))
            .Select(f => (File: f, Lines: File.ReadLines(f).Count()))
            .Where(x => x.Lines > 500 && !File.ReadLines(x.File).Take(15).Any(l => l.Contains("P/Invoke declarations of one ABI")))
            .Select(x => $"{Path.GetRelativePath(SrcRoot, x.File)}: {x.Lines} lines").ToList();
        Assert.True(big.Count == 0, string.Join("\n", big));
    }
}
