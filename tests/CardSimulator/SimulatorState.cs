using System.Text.Json;
using System.Text.Json.Serialization;
using BigInteger = Org.BouncyCastle.Math.BigInteger;

namespace PicoHsm.CardSimulator;

/// <summary>JSON persistence of a simulated card (the --state file). Secrets are stored in clear: test use only.</summary>
internal static class SimulatorState
{
    sealed class KeyDto
    {
        public string Kind { get; set; } = "";
        public string? N { get; set; }
        public string? E { get; set; }
        public string? D { get; set; }
        public string? Curve { get; set; }
        public string? EcD { get; set; }
        public string? Aes { get; set; }
        public string? Allowed { get; set; }
        public int Domain { get; set; }
    }

    sealed class FileDto
    {
        public string Fid { get; set; } = "";
        public string? Data { get; set; }
        public KeyDto? Key { get; set; }
        public bool Static { get; set; }
        public int Descriptor { get; set; } = 1;
    }

    sealed class DomainDto
    {
        public int Total { get; set; }
        public int Imported { get; set; }
        public string Dkek { get; set; } = "";
    }

    sealed class StateDto
    {
        public int Version { get; set; } = 1;
        public bool Initialized { get; set; }
        public int Options { get; set; }
        public string UserPin { get; set; } = "";
        public int UserMax { get; set; }
        public int UserLeft { get; set; }
        public string SoPin { get; set; } = "";
        public int SoMax { get; set; }
        public int SoLeft { get; set; }
        public List<DomainDto> Domains { get; set; } = new();
        public List<FileDto> Files { get; set; } = new();
        public KeyDto DeviceKey { get; set; } = new();
    }

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    static string? H(BigInteger? v) => v == null ? null : v.ToString(16);
    static BigInteger? B(string? s) => s == null ? null : new BigInteger(s, 16);

    static KeyDto ToDto(CardKey k) => new()
    {
        Kind = k.Kind.ToString(), N = H(k.N), E = H(k.E), D = H(k.D), Curve = k.CurveName, EcD = H(k.EcD),
        Aes = k.AesKey == null ? null : Hex.Of(k.AesKey), Allowed = k.AllowedAlgorithms == null ? null : Hex.Of(k.AllowedAlgorithms),
        Domain = k.KeyDomain,
    };

    static CardKey FromDto(KeyDto d) => new()
    {
        Kind = Enum.Parse<CardKeyKind>(d.Kind), N = B(d.N), E = B(d.E), D = B(d.D), CurveName = d.Curve, EcD = B(d.EcD),
        AesKey = d.Aes == null ? null : Hex.Parse(d.Aes),
        AllowedAlgorithms = d.Allowed == null ? null : Hex.Parse(d.Allowed),
        KeyDomain = (byte)d.Domain,
    };

    public static string Save(ScHsmSimulator sim)
    {
        var s = sim.TakeSnapshot();
        var dto = new StateDto
        {
            Initialized = s.Initialized, Options = s.Options, UserPin = Hex.Of(s.UserPin), SoPin = Hex.Of(s.SoPin),
            UserMax = s.UserMax, UserLeft = s.UserLeft, SoMax = s.SoMax, SoLeft = s.SoLeft,
            Domains = s.Domains.Select(d => new DomainDto { Total = d.Total, Imported = d.Imported, Dkek = Hex.Of(d.Accumulator) }).ToList(),
            Files = s.Files.Select(f => new FileDto
            {
                Fid = f.Fid.ToString("X4"), Static = f.Static, Descriptor = f.Descriptor,
                Data = f.Key == null ? Hex.Of(f.Data) : null,
                Key = f.Key == null || (f.Static && f.Fid == 0xCC00) ? null : ToDto(f.Key),
            }).ToList(),
            DeviceKey = ToDto(s.DeviceKey),
        };
        return JsonSerializer.Serialize(dto, Json);
    }

    public static void Load(ScHsmSimulator sim, string json)
    {
        var dto = JsonSerializer.Deserialize<StateDto>(json, Json) ?? throw new InvalidDataException("empty state");
        var snap = new ScHsmSimulator.Snapshot
        {
            Initialized = dto.Initialized, Options = (ushort)dto.Options, UserPin = Hex.Parse(dto.UserPin), SoPin = Hex.Parse(dto.SoPin),
            UserMax = dto.UserMax, UserLeft = dto.UserLeft, SoMax = dto.SoMax, SoLeft = dto.SoLeft,
            Domains = dto.Domains.Select(d => new ScHsmSimulator.KeyDomain { Total = (byte)d.Total, Imported = (byte)d.Imported, Accumulator = Hex.Parse(d.Dkek) }).ToList(),
            Files = dto.Files.Select(f => new ScHsmSimulator.CardFile
            {
                Fid = Convert.ToUInt16(f.Fid, 16), Static = f.Static, Descriptor = (byte)f.Descriptor,
                Data = f.Data == null ? Array.Empty<byte>() : Hex.Parse(f.Data),
                Key = f.Key == null ? null : FromDto(f.Key),
            }).ToList(),
            DeviceKey = FromDto(dto.DeviceKey),
        };
        sim.Restore(snap);
    }
}
