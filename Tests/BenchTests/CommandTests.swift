import Foundation
import Plotting
import Training
import Testing

@Suite struct CommandTests {
    /// `sqakd quantizer curve --png` writes a 900×700 PNG that libpng decodes and that is not blank (many
    /// non-white pixels, several colours).
    @Test func quantizerCurvePNG() throws {
        let dir = tempDir("curve")
        defer { try? FileManager.default.removeItem(at: dir) }
        let png = dir.appendingPathComponent("curve.png")
        let r = try sqakd(["quantizer", "curve", "ewgs", "--bits", "2", "--role", "activation", "--steps", "101",
                           "--png", png.path])
        #expect(r.status == 0, "\(r.output)")
        let image = try Canvas.readPNG(from: png)
        #expect(image.width == 900 && image.height == 700)
        var nonWhite = 0
        var colours = Set<[UInt8]>()
        for y in 0..<image.height {
            for x in 0..<image.width {
                let c = image.pixel(x, y)
                if c != .white { nonWhite += 1 }
                colours.insert([c.r, c.g, c.b])
            }
        }
        #expect(nonWhite > 5_000 && colours.count >= 5)
        #expect(throws: PNGError.self) { try Canvas.readPNG(from: png.appendingPathExtension("missing")) }
    }

    /// Each `sqakd bench` subcommand parses and documents itself; the default subcommand keeps
    /// `sqakd bench --model …` (scripts/bench_*.py) working.
    @Test func benchSubcommandsParse() throws {
        for sub in ["step", "conv", "layers", "optimizer", "loader"] {
            let r = try sqakd(["bench", sub, "--help"])
            #expect(r.status == 0 && r.output.contains("USAGE"), "\(sub): \(r.output)")
        }
        let bad = try sqakd(["bench", "conv", "--threads", "0"])
        #expect(bad.status != 0 && bad.output.contains("--threads"), "\(bad.output)")
        let step = try sqakd(["bench", "--model", "resnet20", "--batch", "4", "--steps", "1", "--warmup", "0", "--json"])
        #expect(step.status == 0 && step.output.contains("trainImagesPerSecond"), "\(step.output)")
    }

    /// `--baseline` times the method's step and the plain step alternately: as many of each, in the JSON and as
    /// a ratio in the text; without a method it is a usage error.
    @Test func benchBaselineAlternates() throws {
        let common = ["bench", "--model", "resnet20", "--batch", "4", "--quantizer", "ewgs", "--bits", "2", "--distill", "kd",
                      "--baseline", "--steps", "3", "--warmup", "1"]
        let json = try sqakd(common + ["--json"])
        #expect(json.status == 0, "\(json.output)")
        let line = json.output.split(separator: "\n").last.map(String.init) ?? ""
        let r = try JSONDecoder().decode(BenchmarkResult.self, from: Data(line.utf8))
        #expect(r.trainStepMilliseconds.count == 3 && r.baselineStepMilliseconds?.count == 3)
        #expect((r.baselineRatio ?? 0) > 0)
        let text = try sqakd(common)
        #expect(text.status == 0 && text.output.contains("kd costs") && text.output.contains("× that step"), "\(text.output)")
        let bad = try sqakd(["bench", "--baseline", "--steps", "1"])
        #expect(bad.status != 0 && bad.output.contains("--baseline"), "\(bad.output)")
    }
}
