namespace PicoHsm.Module; internal static class Placeholder {}
