import Foundation
import Plotting
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
}
