namespace PicoHsm.Core.Tests.Fuzz;

/// <summary>
/// Mutations of a valid input, the kinds that find parser bugs: bit flips, byte changes at and
/// around length fields, truncation, insertion and deletion, duplication of a slice, interesting
/// values (00, 7F, 80, FF, 81 xx, 82 xx xx: DER long lengths), and tails of random bytes. Seeded, so
/// a failure names the seed that reproduces it.
/// </summary>
public sealed class Mutator(int seed)
{
    private static readonly byte[] Interesting = [0x00, 0x01, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0xFE, 0xFF];
    private readonly Random _random = new(seed);

    public byte[] Mutate(byte[] input)
    {
        var data = new List<byte>(input);
        int rounds = 1 + _random.Next(4);
        for (int r = 0; r < rounds; r++)
        {
            int pos = data.Count == 0 ? 0 : _random.Next(data.Count);
            switch (_random.Next(9))
            {
                case 0 when data.Count > 0: data[pos] ^= (byte)(1 << _random.Next(8)); break;
                case 1 when data.Count > 0: data[pos] = Interesting[_random.Next(Interesting.Length)]; break;
                case 2 when data.Count > 0: data.RemoveRange(pos, 1 + _random.Next(Math.Min(16, data.Count - pos))); break;
                case 3: data.InsertRange(pos, RandomBytes(1 + _random.Next(16))); break;
                case 4 when data.Count > 0: data.RemoveRange(pos, data.Count - pos); break; // truncate
                case 5 when data.Count > 1:
                    int len = 1 + _random.Next(Math.Min(64, data.Count - pos));
                    data.InsertRange(_random.Next(data.Count), data.GetRange(pos, len));
                    break;
                case 6: data.InsertRange(pos, new byte[] { 0x84, 0x7F, 0xFF, 0xFF, 0xFF }); break; // a huge DER length
                case 7 when data.Count > 0: data[pos] = (byte)(data[pos] + _random.Next(-2, 3)); break; // off-by-one lengths
                default: data.AddRange(RandomBytes(_random.Next(32))); break;
            }
        }
        return data.ToArray();
    }

    /// <summary>Text inputs (JSON): mutations that keep it text-like half of the time.</summary>
    public byte[] MutateText(byte[] json)
    {
        if (_random.Next(2) == 0) return Mutate(json);
        string s = System.Text.Encoding.UTF8.GetString(json);
        string[] tokens = ["\"", "{", "}", "[", "]", ":", ",", "null", "true", "-1", "1e309", "99999999999999999999", "\"\"", "\\u0000", "\"AAAA\"", "0"];
        int rounds = 1 + _random.Next(3);
        for (int r = 0; r < rounds && s.Length > 0; r++)
        {
            int pos = _random.Next(s.Length);
            int cut = _random.Next(Math.Min(12, s.Length - pos) + 1);
            s = s.Remove(pos, cut).Insert(pos, tokens[_random.Next(tokens.Length)]);
        }
        return System.Text.Encoding.UTF8.GetBytes(s);
    }

    public byte[] RandomBytes(int n)
    {
        var b = new byte[n];
        _random.NextBytes(b);
        return b;
    }

    public int Next(int max) => _random.Next(max);
}
