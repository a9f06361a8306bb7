public class Smoke2 { [Fact] public void Runs() => Assert.True(true); }
