import Foundation
import Testing

@Suite("sqakd quantizer (command line)")
struct QuantizerCommandTests {
    /// A registered quantizer is reachable from the command line with no other change: listed, and its
    /// curve tabulated (`ste`, 2 bits, activation: s = 1/3 on [0, 1]).
    @Test func steListAndCurve() throws {
        let list = try sqakd(["quantizer", "list"])
        #expect(list.status == 0 && list.output.contains("ste      bits 2-8    plain uniform quantizer"), "\(list.output)")

        let curve = try sqakd(["quantizer", "curve", "ste", "--bits", "2", "--csv", "--steps", "9"])
        #expect(curve.status == 0, "\(curve.output)")
        let lines = curve.output.split(separator: "\n").map(String.init)
        #expect(lines == ["x,y,dy_dx", "-0.5,0,0", "-0.25,0,0", "0,0,1", "0.25,0.333333343,1", "0.5,0.666666687,1",
                          "0.75,0.666666687,1", "1,1,1", "1.25,1,0", "1.5,1,0"], "\(curve.output)")

        let bad = try sqakd(["quantizer", "curve", "ste", "--bits", "1", "--csv"])
        #expect(bad.status != 0 && bad.output.contains("quantizer 'ste' supports 2…8 bits, got 1"), "\(bad.output)")
    }
}
