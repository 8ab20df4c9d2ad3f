import Foundation

/// The live progress line: epoch, batch, running loss and accuracy, images/s and ETA. On a terminal it
/// redraws one line (carriage return); otherwise it prints a line every `every` batches.
public final class ProgressLine {
    let isTTY = isatty(fileno(stderr)) != 0
    var lastDraw = Date.distantPast
    public var quiet = false

    public init() {}

    public func update(epoch: Int, epochs: Int, batch: Int, batches: Int, loss: Double, top1: Double,
                       imagesPerSecond: Double, etaSeconds: Double) {
        if quiet { return }
        let now = Date()
        let final = batch == batches
        guard final || now.timeIntervalSince(lastDraw) > (isTTY ? 0.25 : 30) else { return }
        lastDraw = now
        let line = String(format: "epoch %d/%d  batch %d/%d  loss %.4f  acc %.2f%%  %.0f img/s  ETA %@",
                          epoch, epochs, batch, batches, loss, top1, imagesPerSecond, formatDuration(etaSeconds) as NSString)
        if isTTY {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        } else {
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    /// Ends the redrawn line and prints a permanent one.
    public func finish(_ message: String) {
        if quiet { return }
        if isTTY { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}

public func formatDuration(_ s: Double) -> String {
    guard s.isFinite, s >= 0 else { return "--" }
    let t = Int(s.rounded())
    return t >= 3600 ? String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) : String(format: "%dm%02ds", t / 60, t % 60)
}

/// A progress bar for long one-off jobs (`sqakd data prepare`): "label [#####.....] 41% 41000/100000
/// 3400/s ETA 0m17s" on standard error, redrawn in place on a terminal (at most 4 times a second), else
/// one line every 30 s and at the end.
public final class ProgressBar {
    let isTTY = isatty(fileno(stderr)) != 0
    let label: String
    let started = Date()
    var lastDraw = Date.distantPast
    public var quiet = false

    public init(_ label: String) { self.label = label }

    public func update(done: Int, total: Int) {
        if quiet { return }
        let now = Date()
        let final = done >= total
        guard final || now.timeIntervalSince(lastDraw) > (isTTY ? 0.25 : 30) else { return }
        lastDraw = now
        let elapsed = now.timeIntervalSince(started)
        let rate = Double(done) / max(elapsed, 1e-9)
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let filled = Int((fraction * 30).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
        let eta = final ? "done in " + formatDuration(elapsed) : "ETA " + formatDuration(Double(total - done) / max(rate, 1e-9))
        let line = String(format: "%@ [%@] %3.0f%% %d/%d  %.0f/s  %@", label as NSString, bar as NSString, 100 * fraction, done, total,
                          rate, eta as NSString)
        if isTTY {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line + (final ? "\n" : "")).utf8))
        } else {
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }
}
