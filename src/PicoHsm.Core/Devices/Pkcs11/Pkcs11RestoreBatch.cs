using Net.Pkcs11Interop.Common;
using PicoHsm.Common;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// A batch of restores on a generic PKCS#11 token (<see cref="IRestoreBatching.BeginRestoring"/>): the
/// token lock held from the start to <see cref="Dispose"/>, and one <see cref="Pkcs11IdIndex"/> taken
/// under it that the restores plan from and keep current. Why the lock for the whole batch: the index is
/// only as current as the last change it was told of, and every PicoHsm process of this host takes the
/// lock before it changes the token, so while it is held only this batch changes the token from here.
/// Other programs do not take it: <see cref="Complete"/> compares the index with a fresh pass.
/// </summary>
internal sealed class Pkcs11RestoreBatch : IRestoreBatch
{
    private readonly DeviceContext _context;
    private readonly Pkcs11Connection _p11;
    private readonly Action _ended;
    // The ids this batch restored, each once (by its hex form).
    private readonly Dictionary<string, byte[]> _restored = new(StringComparer.Ordinal);
    private TokenLock? _lock;

    public Pkcs11RestoreBatch(DeviceContext context, Pkcs11Connection connection, TokenLock tokenLock, Pkcs11IdIndex index, Action ended)
    {
        _context = context;
        _p11 = connection;
        _lock = tokenLock;
        Index = index;
        _ended = ended;
    }

    /// <summary>What holds which id, current with this batch's changes.</summary>
    public Pkcs11IdIndex Index { get; }

    /// <summary>A key this batch restored (or found present) at <paramref name="id"/>: checked by <see cref="Complete"/>.</summary>
    public void Restored(byte[] id)
    {
        string hex = IdHex(id);
        if (!_restored.ContainsKey(hex)) _restored[hex] = id;
    }

    public IReadOnlyList<PicoHsmException> Complete()
    {
        lock (_context.Gate)
        {
            if (_restored.Count == 0) return Array.Empty<PicoHsmException>();
            Pkcs11IdIndex now;
            try { now = Pkcs11IdIndex.Take(_p11.Session, _p11.ModulePath); }
            catch (Pkcs11Exception ex) { throw Pkcs11Errors.Translate(ex, "check the restored keys' ids", _context.TokenLabel); }
            var problems = new List<PicoHsmException>();
            foreach (var id in _restored.Values)
            {
                var extra = now.NotIn(Index, id);
                if (extra.Count == 0) continue;
                string idHex = IdHex(id);
                string what = string.Join(", ", extra.Select(o => o.Class.ToString().Replace("CKO_", "").ToLowerInvariant().Replace('_', ' ')).Distinct());
                problems.Add(new PicoHsmException(PicoErrorKind.ResourceExists, "IdTakenDuringRestore",
                    $"While this restore ran, another program (one that does not take PicoHsm's token lock, such as pkcs11-tool) made {extra.Count} object(s) ({what}) " +
                    $"with id {idHex} on '{_context.TokenLabel}', where the backup's key was restored: the token now holds both. " +
                    $"List them with Get-PicoKey -Id {idHex}, and remove the one that should not be there (Remove-PicoKey).", $"id {idHex} on '{_context.TokenLabel}'"));
            }
            return problems;
        }
    }

    public void Dispose()
    {
        lock (_context.Gate)
        {
            if (_lock is null) return;
            _ended();
            _lock.Dispose();
            _lock = null;
        }
    }
}
