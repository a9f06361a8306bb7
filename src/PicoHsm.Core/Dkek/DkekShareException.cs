namespace PicoHsm.Dkek;

public enum DkekShareReason
{
    /// <summary>Fewer shares than the threshold n.</summary>
    NotEnoughShares,
    /// <summary>Two shares with one index (often: the same custodian's file given twice).</summary>
    DuplicateIndex,
    /// <summary>Shares of two different DKEKs (their KCVs differ).</summary>
    DifferentDkeks,
    /// <summary>Shares of one DKEK but from two different splits (n, m or split id differ): they cannot be combined.</summary>
    DifferentSplits,
    /// <summary>A share has the wrong length.</summary>
    InvalidShare,
    /// <summary>The rebuilt DKEK does not have the KCV recorded in the share files.</summary>
    KcvMismatch,
}

/// <summary>A set of DKEK shares that cannot be combined. Messages name the files, never secrets.</summary>
public sealed class DkekShareException : Exception
{
    public DkekShareException(DkekShareReason reason, string message, Exception? inner = null) : base(message, inner)
    {
        Reason = reason;
    }

    public DkekShareReason Reason { get; }
}
