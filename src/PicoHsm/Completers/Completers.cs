using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Session;
using PicoHsm.Keys;

namespace PicoHsm.Module;

/// <summary>Completes the well-known PKCS#11 module paths that exist on this machine.</summary>
public sealed class ModulePathCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        string word = CompletionText.Unquote(wordToComplete);
        foreach (string p in TokenDirectory.WellKnownModulePaths().Where(File.Exists))
            if (p.Contains(word, StringComparison.OrdinalIgnoreCase))
                yield return CompletionText.Result(p, wordToComplete, p);
    }
}

/// <summary>Completes labels of the initialised tokens of the module being connected to (-ModulePath, else the default).</summary>
public sealed class TokenLabelCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        IReadOnlyList<PicoHsmToken> tokens;
        try
        {
            string? module = CompletionText.Bound(fakeBoundParameters, "ModulePath") as string;
            if (module is null && CompletionText.IsNamed(commandAst, "ModulePath"))
                yield break; // -ModulePath is there but could not be evaluated: the default module's tokens would be wrong
            tokens = TokenDirectory.ListTokens(TokenDirectory.ResolveModulePath(module));
        }
        catch (PicoHsmException)
        {
            yield break;
        }
        string word = CompletionText.Unquote(wordToComplete);
        foreach (var t in tokens.Where(t => t.Initialized && (t.Label ?? "").StartsWith(word, StringComparison.OrdinalIgnoreCase)))
            yield return CompletionText.Result(t.Label!, wordToComplete, $"{t.Label} ({t.Model}, serial {t.SerialNumber})");
    }
}

/// <summary>Completes key ids of the -Session given, else of the default session.</summary>
public sealed class KeyIdCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        string word = CompletionText.Unquote(wordToComplete);
        foreach (var k in KeyCompletion.Keys(commandName, commandAst, fakeBoundParameters))
            if (k.Id.StartsWith(word, StringComparison.OrdinalIgnoreCase))
                yield return CompletionText.Result(k.Id, wordToComplete, $"{k.Label} {k.Algorithm}");
    }
}

/// <summary>Completes key labels of the -Session given, else of the default session.</summary>
public sealed class KeyLabelCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        string word = CompletionText.Unquote(wordToComplete);
        foreach (var k in KeyCompletion.Keys(commandName, commandAst, fakeBoundParameters))
            if (k.Label is { } l && l.StartsWith(word, StringComparison.OrdinalIgnoreCase))
                yield return CompletionText.Result(l, wordToComplete, $"{k.Id} {k.Algorithm}");
    }
}

internal static class KeyCompletion
{
    public static IEnumerable<PicoKey> Keys(string commandName, CommandAst commandAst, IDictionary bound)
    {
        PicoHsmSession? session;
        if (CompletionText.IsNamed(commandAst, "Session"))
        {
            // The keys of the session the command names, or none: never the default session's,
            // which would complete ids of another token.
            session = CompletionText.Bound(bound, "Session") as PicoHsmSession;
        }
        else
        {
            session = SessionRegistry.Current.Default;
        }
        if (session is null || !session.IsOpen) return Array.Empty<PicoKey>();
        IEnumerable<PicoKey> keys;
        try { keys = session.Device.ListKeys(); }
        catch (PicoHsmException) { return Array.Empty<PicoKey>(); }
        // Export-PicoWrappedKey refuses a key that cannot be exported; do not offer one.
        return commandName.Equals("Export-PicoWrappedKey", StringComparison.OrdinalIgnoreCase) ? keys.Where(k => k.Exportable) : keys;
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
        string word = CompletionText.Unquote(wordToComplete);
        foreach (string r in readers.Where(r => r.StartsWith(word, StringComparison.OrdinalIgnoreCase)))
            yield return CompletionText.Result(r, wordToComplete, r);
    }
}

/// <summary>What every completer shares: reading bound values and quoting only when needed.</summary>
internal static class CompletionText
{
    /// <summary>A bound value without its PSObject wrapper (PowerShell wraps the values of variables).</summary>
    public static object? Bound(IDictionary bound, string name) =>
        bound.Contains(name) ? (bound[name] is PSObject o ? o.BaseObject : bound[name]) : null;

    /// <summary>Whether the command line names the parameter (by its full name or a prefix of it).</summary>
    public static bool IsNamed(CommandAst commandAst, string parameter) =>
        commandAst.CommandElements.OfType<CommandParameterAst>().Any(p =>
            p.ParameterName.Length > 0 && parameter.StartsWith(p.ParameterName, StringComparison.OrdinalIgnoreCase));

    public static string Unquote(string word) => word.Trim('\'', '"');

    /// <summary>
    /// The value as it must be typed: bare when PowerShell reads it as one literal word (01a1,
    /// ca-hsm), single-quoted when it has spaces or characters PowerShell would interpret, and
    /// in the user's own quotes when they began with one.
    /// </summary>
    public static CompletionResult Result(string value, string wordToComplete, string tooltip)
    {
        bool userQuoted = wordToComplete.StartsWith('\'') || wordToComplete.StartsWith('"');
        string text = userQuoted && wordToComplete[0] == '"'
            ? "\"" + value.Replace("`", "``").Replace("$", "`$").Replace("\"", "`\"") + "\""
            : userQuoted || NeedsQuotes(value) ? "'" + CodeGeneration.EscapeSingleQuotedStringContent(value) + "'" : value;
        return new CompletionResult(text, value, CompletionResultType.ParameterValue, tooltip);
    }

    internal static bool NeedsQuotes(string value)
    {
        if (value.Length == 0) return true;
        if (value[0] is '-' or '@' or '#' or '<' or '>' or '[' or '.' && !(value[0] == '.' && value.Length > 1 && value[1] is '/' or '\\')) return true;
        foreach (char c in value)
            if (char.IsWhiteSpace(c) || c is '\'' or '"' or '`' or '$' or '&' or '|' or ';' or ',' or '(' or ')' or '{' or '}' or '<' or '>')
                return true;
        return false;
    }
}
