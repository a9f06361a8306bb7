using PicoHsm.Common;

namespace PicoHsm.Devices;

/// <summary>
/// Devices that restore many keys faster as one batch than key by key. A generic PKCS#11 token: one
/// pass over its objects instead of a search per key, because a token such as SoftHSM2 reads every
/// object for each search, which made a restore of n keys cost n². Restore-PicoHsm uses it; what
/// <see cref="IDeviceBackend.PlanRestore"/> and <see cref="IDeviceBackend.Restore"/> decide is the
/// same with or without a batch.
/// </summary>
public interface IRestoreBatching
{
    /// <summary>
    /// Until disposed, <see cref="IDeviceBackend.PlanRestore"/> reads target ids from one snapshot of the
    /// device, taken at the first plan. Takes no lock and changes nothing: it is the pre-flight that
    /// -WhatIf shows, and <see cref="IDeviceBackend.Restore"/> plans again in a batch of its own.
    /// </summary>
    IDisposable BeginPlanning();

    /// <summary>
    /// Until disposed, the device's lock (<see cref="TokenLock"/>) is held for every restore (other
    /// PicoHsm processes changing this device wait), and the restores plan from one snapshot taken under
    /// it and kept current with their own changes. Call <see cref="IRestoreBatch.Complete"/> after the last.
    /// </summary>
    IRestoreBatch BeginRestoring(CancellationToken cancellation);

    /// <summary>
    /// As <see cref="BeginRestoring"/>, or null when a batch is already open on this device (another
    /// runspace's, over the same session): restores then run in that batch, under its lock and index.
    /// </summary>
    IRestoreBatch? TryBeginRestoring(CancellationToken cancellation);
}

/// <summary>A batch of restores under the device's lock (see <see cref="IRestoreBatching.BeginRestoring"/>).</summary>
public interface IRestoreBatch : IDisposable
{
    /// <summary>
    /// Looks at the device once more: a key restored into an id that another program (which the lock
    /// cannot hold back: pkcs11-tool, another host) gave an object meanwhile is reported, one error per
    /// id. Empty: every restored id holds what the batch made there and nothing else.
    /// </summary>
    IReadOnlyList<PicoHsmException> Complete();
}
