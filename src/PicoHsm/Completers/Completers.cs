using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Keys;
using PicoHsm.Session;

namespace PicoHsm.Module;

/// <summary>Completes the well-known PKCS#11 module paths that exist on this machine.</summary>
public sealed class ModulePathCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        foreach (string p in Pkcs11Modules.WellKnownPaths().Where(File.Exists))
            if (p.Contains(wordToComplete.Trim('\'', '"'), StringComparison.OrdinalIgnoreCase))
                yield return new CompletionResult($"'{p}'", p, CompletionResultType.ParameterValue, p);
    }
}

/// <summary>Completes labels of the initialised tokens of the module being connected to.</summary>
public sealed class TokenLabelCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        IReadOnlyList<PicoHsmToken> tokens;
        try
        {
            tokens = TokenDiscovery.List(Pkcs11Modules.ResolvePath(fakeBoundParameters["ModulePath"] as string));
        }
        catch (PicoHsmException)
        {
            yield break;
        }
        string word = wordToComplete.Trim('\'', '"');
        foreach (var t in tokens.Where(t => t.Initialized && (t.Label ?? "").StartsWith(word, StringComparison.OrdinalIgnoreCase)))
            yield return new CompletionResult($"'{t.Label}'", t.Label, CompletionResultType.ParameterValue, $"{t.Label} ({t.Model}, serial {t.SerialNumber})");
    }
}

/// <summary>Completes key ids of the default session.</summary>
public sealed class KeyIdCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        foreach (var k in KeyCompletion.Keys(fakeBoundParameters))
            if (k.Id.StartsWith(wordToComplete, StringComparison.OrdinalIgnoreCase))
                yield return new CompletionResult(k.Id, k.Id, CompletionResultType.ParameterValue, $"{k.Label} {k.Algorithm}");
    }
}

/// <summary>Completes key labels of the default session.</summary>
public sealed class KeyLabelCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        string word = wordToComplete.Trim('\'', '"');
        foreach (var k in KeyCompletion.Keys(fakeBoundParameters))
            if (k.Label is { } l && l.StartsWith(word, StringComparison.OrdinalIgnoreCase))
                yield return new CompletionResult($"'{l}'", l, CompletionResultType.ParameterValue, $"{k.Id} {k.Algorithm}");
    }
}

internal static class KeyCompletion
{
    public static IEnumerable<Keys.PicoKey> Keys(IDictionary bound)
    {
        var session = bound["Session"] as Session.PicoHsmSession ?? SessionRegistry.Current.Default;
        if (session is null || !session.IsOpen) return Array.Empty<Keys.PicoKey>();
        try { return session.Device.ListKeys(); }
        catch (PicoHsmException) { return Array.Empty<Keys.PicoKey>(); }
    }
}

/// <summary>Completes PC/SC readers that hold a SmartCard-HSM / Pico HSM.</summary>
public sealed class ReaderCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        IReadOnlyList<string> readers;
        try { readers = SessionConnector.FindCardReaders(); }
        catch (Exception) { yield break; }
        string word = wordToComplete.Trim('\'', '"');
        foreach (string r in readers.Where(r => r.StartsWith(word, StringComparison.OrdinalIgnoreCase)))
            yield return new CompletionResult($"'{r}'", r, CompletionResultType.ParameterValue, r);
    }
}
