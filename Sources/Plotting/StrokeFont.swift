import Foundation

/// A single-stroke sans-serif font drawn for this package (not derived from an existing font), so text can
/// be scaled, rotated and antialiased like any other line. Glyph units: baseline y = 0, capital height 14,
/// x-height 10, descenders to −4, y up.
///
/// Table format, one glyph per line: `<character> <advance> <strokes>`; strokes are separated by `;`, each a
/// polyline of tokens `x,y` (a point) or `a(cx,cy,rx,ry,a0,a1)` (an elliptical arc from angle a0 to a1 in
/// degrees, counter-clockwise from +x, its points appended to the polyline). Characters without a glyph
/// draw as '?'.
enum StrokeFont {
    static let capHeight = 14.0

    static let table = #"""
    ! 4 2,14 2,4; 2,0 2,1
    " 7 2,14 2,10.5; 5,14 5,10.5
    # 11 3.5,0 4.5,14; 7.5,0 8.5,14; 1.5,9.5 10,9.5; 1,4.5 9.5,4.5
    $ 11 a(5.5,10,3.8,2.7,30,270) a(5.5,4.6,4,2.7,90,-150); 5.5,15 5.5,-1
    % 12 a(3,11,2,2.8,0,360); a(9,3,2,2.8,0,360); 10,14 2,0
    & 11.5 10.5,0 3.5,8.8 a(5,11.3,2.4,2.7,232,-40) 2.2,5.2 a(5,3.6,4,3.6,155,360) 9.8,5.5
    ' 4 2,14 2,10.5
    ( 6 a(7,6.25,5,9.5,120,240)
    ) 6 a(-1,6.25,5,9.5,60,-60)
    * 9 4.5,14 4.5,8; 1.9,12.5 7.1,9.5; 1.9,9.5 7.1,12.5
    + 10 5,2 5,10; 1,6 9,6
    , 4 2.3,1 2.3,0.2 1.2,-2.5
    - 8.5 1.5,6 7,6
    . 4 2,0 2,1
    / 7.5 0.5,-1 7,15
    0 10 a(5,7,4,7,0,360)
    1 10 2,11.5 5.5,14 5.5,0
    2 10 a(5,10,4,4,160,-40) 1,0 9,0
    3 10 a(5,10.5,3.6,3.5,150,-90) a(5,3.5,4,3.5,90,-155)
    4 10 7,0 7,14 1,4 9.5,4
    5 10 8.5,14 2.4,14 a(5,4.6,3.9,4.6,135,-150)
    6 10 a(5,4.5,4,4.5,0,360); a(8,4.5,7,9.5,180,100)
    7 10 1,14 9,14 3.5,0
    8 10 a(5,10.6,3.5,3.4,0,360); a(5,3.6,4,3.6,0,360)
    9 10 a(5,9.5,4,4.5,0,360); a(2,9.5,7,9.5,0,-80)
    : 4 2,0 2,1; 2,7 2,8
    ; 4 2,7 2,8; 2.3,1 2.3,0.2 1.2,-2.5
    < 10 9,11 1,6 9,1
    = 10 1,8 9,8; 1,4 9,4
    > 10 1,11 9,6 1,1
    ? 10 a(5,10.5,3.6,3.5,160,-50) 5,5.8 5,4; 5,0 5,1
    @ 13 a(6.5,6,2.3,3,0,360); 8.8,9 8.8,4 a(10.3,4,1.5,1.5,180,360) a(6.5,6,5.3,7,5,260)
    A 10 0.5,0 5,14 9.5,0; 2.2,5 7.8,5
    B 11 1.5,0 1.5,14 6,14 a(6,10.5,3,3.5,90,-90) 1.5,7; 6.2,7 a(6.2,3.5,3.5,3.5,90,-90) 1.5,0
    C 12 a(6,7,5,7,40,320)
    D 11.5 1.5,0 1.5,14 4.5,14 a(4.5,9.5,5,4.5,90,0) a(4.5,4.5,5,4.5,0,-90) 1.5,0
    E 10 9,14 1.5,14 1.5,0 9,0; 1.5,7 7.5,7
    F 9.5 9,14 1.5,14 1.5,0; 1.5,7 7.5,7
    G 12.5 a(6,7,5,7,40,340) 10.7,6.3 7,6.3
    H 11 1.5,0 1.5,14; 9.5,0 9.5,14; 1.5,7 9.5,7
    I 4 2,0 2,14
    J 9 7,14 7,3.5 a(4,3.5,3,3.5,0,-180)
    K 10.5 1.5,0 1.5,14; 9.5,14 1.5,5; 4.3,8.1 9.8,0
    L 9 1.5,14 1.5,0 8.5,0
    M 13 1.5,0 1.5,14 6.5,0 11.5,14 11.5,0
    N 11 1.5,0 1.5,14 9.5,0 9.5,14
    O 13 a(6.5,7,5.5,7,0,360)
    P 10.5 1.5,0 1.5,14 6,14 a(6,10,3.5,4,90,-90) 1.5,6
    Q 13 a(6.5,7,5.5,7,0,360); 7.5,3.5 11.5,-0.5
    R 11 1.5,0 1.5,14 6,14 a(6,10.25,3.5,3.75,90,-90) 1.5,6.5; 5.8,6.5 9.8,0
    S 11 a(5.5,10.5,4,3.5,30,270) a(5.5,3.5,4.2,3.5,90,-150)
    T 10 0.5,14 9.5,14; 5,14 5,0
    U 11 1.5,14 1.5,4.5 a(5.5,4.5,4,4.5,180,360) 9.5,14
    V 10 0.5,14 5,0 9.5,14
    W 14 0.5,14 3.5,0 7,14 10.5,0 13.5,14
    X 10 1,14 9,0; 9,14 1,0
    Y 10 0.5,14 5,7 9.5,14; 5,7 5,0
    Z 10 1,14 9,14 1,0 9,0
    [ 6 5,15.5 2,15.5 2,-2 5,-2
    \ 7.5 0.5,15 7,-1
    ] 6 1,15.5 4,15.5 4,-2 1,-2
    ^ 9 1.5,10 4.5,14 7.5,10
    _ 9 0,-2.5 9,-2.5
    ` 5 2,14 3.5,12
    a 10.5 a(5,5,4,5,0,360); 9,10 9,0
    b 11 1.5,14 1.5,0; a(5.5,5,4,5,0,360)
    c 9.5 a(5,5,4,5,45,315)
    d 10.5 a(5,5,4,5,0,360); 9,14 9,0
    e 10 1,5 9,5 a(5,5,4,5,0,320)
    f 7.5 a(6,11.5,2.3,2.5,45,180) 3.7,0; 1.2,10 6.8,10
    g 10.5 a(5,5,4,5,0,360); 9,10 9,-1 a(5,-1,4,3,0,-160)
    h 10.5 1.5,0 1.5,14; 1.5,6 a(5.25,6,3.75,4,180,0) 9,0
    i 4 2,0 2,10; 2,13 2,14
    j 5.5 3.5,10 3.5,-1.5 a(1.5,-1.5,2,2.5,0,-135); 3.5,13 3.5,14
    k 9.5 1.5,0 1.5,14; 8.5,10 1.5,3.5; 4.2,6 9,0
    l 5 2,14 2,1.5 a(3.5,1.5,1.5,1.5,180,300)
    m 14 1.5,0 1.5,10; 1.5,6.5 a(4.25,6.5,2.75,3.5,180,0) 7,0; 7,6.5 a(9.75,6.5,2.75,3.5,180,0) 12.5,0
    n 10.5 1.5,0 1.5,10; 1.5,6 a(5.25,6,3.75,4,180,0) 9,0
    o 10 a(5,5,4,5,0,360)
    p 11 1.5,10 1.5,-4; a(5.5,5,4,5,0,360)
    q 10.5 a(5,5,4,5,0,360); 9,10 9,-4
    r 7.5 1.5,0 1.5,10; 1.5,6 a(5,6,3.5,4,180,60)
    s 9.5 a(4.8,7.5,3.4,2.5,30,270) a(4.8,2.5,3.6,2.5,90,-150)
    t 8 3.5,13 3.5,2.5 a(5.7,2.5,2.2,2.5,180,300); 1,10 7,10
    u 10.5 1.5,10 1.5,4 a(5.25,4,3.75,4,180,360); 9,10 9,0
    v 9 0.5,10 4.5,0 8.5,10
    w 12.5 0.5,10 3.2,0 6.25,10 9.3,0 12,10
    x 9 1,10 8,0; 8,10 1,0
    y 9 0.5,10 4.65,0.1; 8.9,10 2.9,-4 1.5,-4
    z 9 1,10 8,10 1,0 8,0
    { 7 5.5,15.5 4.5,15 3.8,14 3.8,8.5 2.2,6.75 3.8,5 3.8,-0.5 4.5,-1.5 5.5,-2
    | 4 2,15.5 2,-2
    } 7 1.5,15.5 2.5,15 3.2,14 3.2,8.5 4.8,6.75 3.2,5 3.2,-0.5 2.5,-1.5 1.5,-2
    ~ 10 a(3,5.5,2,1.5,180,0) a(7,5.5,2,1.5,180,360)
    ± 10 5,4.5 5,12.5; 1,8.5 9,8.5; 1,1.5 9,1.5
    × 10 2,3 8,9; 8,3 2,9
    − 10 1,6 9,6
    – 10 0.5,6 9.5,6
    — 15 0.5,6 14.5,6
    Δ 12 0.5,0 6,14 11.5,0 0.5,0
    σ 11 a(5,4.5,4,4.5,90,450) 10.5,9
    μ 10.5 1.5,-4 1.5,10; 1.5,4 a(5.25,4,3.75,4,180,360); 9,10 9,0
    ° 6 a(3,12,1.8,1.8,0,360)
    … 12 2,0 2,1; 6,0 6,1; 10,0 10,1
    """#

    struct Glyph: Sendable {
        var advance: Double
        var strokes: [[(x: Double, y: Double)]]
    }

    static let glyphs: [Character: Glyph] = {
        var out: [Character: Glyph] = [" ": Glyph(advance: 6, strokes: [])]
        for line in table.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 2)
            guard fields.count == 3, let ch = fields[0].first, let advance = Double(fields[1]) else {
                preconditionFailure("StrokeFont table line '\(line)'")
            }
            out[ch] = Glyph(advance: advance, strokes: fields[2].split(separator: ";").map { parseStroke($0) })
        }
        return out
    }()

    static func parseStroke(_ text: Substring) -> [(x: Double, y: Double)] {
        var points: [(x: Double, y: Double)] = []
        for token in text.split(separator: " ") {
            if token.hasPrefix("a(") {
                let v = token.dropFirst(2).dropLast().split(separator: ",").compactMap { Double($0) }
                precondition(v.count == 6, "StrokeFont arc '\(token)'")
                let (cx, cy, rx, ry, a0, a1) = (v[0], v[1], v[2], v[3], v[4], v[5])
                let n = max(2, Int((abs(a1 - a0) / 8).rounded(.up)))
                for i in 0...n {
                    let a = (a0 + (a1 - a0) * Double(i) / Double(n)) * .pi / 180
                    points.append((cx + rx * cos(a), cy + ry * sin(a)))
                }
            } else {
                let v = token.split(separator: ",").compactMap { Double($0) }
                precondition(v.count == 2, "StrokeFont point '\(token)'")
                points.append((v[0], v[1]))
            }
        }
        return points
    }

    static func glyph(_ ch: Character) -> Glyph { glyphs[ch] ?? glyphs["?"]! }

    /// Letter spacing added to every advance, in glyph units.
    static let tracking = 0.6

    static func width(_ text: String, size: Double) -> Double {
        let units = text.reduce(0.0) { $0 + glyph($1).advance + tracking }
        return max(0, units - tracking) * size / capHeight
    }

    /// Stroke width that keeps small text legible and large text from looking heavy.
    static func defaultWeight(size: Double) -> Double { 0.6 + 0.075 * size }

    /// The strokes of `text` in canvas pixels (see `Canvas.drawString` for the parameters).
    static func layout(_ text: String, x: Double, y: Double, size: Double, align: (h: Double, v: Double),
                       angle: Double) -> [[(x: Double, y: Double)]] {
        let u = size / capHeight
        let ox = -align.h * width(text, size: size), oy = (1 - align.v) * size
        let c = cos(angle), s = sin(angle)
        var out: [[(x: Double, y: Double)]] = []
        var pen = 0.0
        for ch in text {
            let g = glyph(ch)
            for stroke in g.strokes {
                out.append(stroke.map { p in
                    // Text frame: x along the baseline, y down; then turned counter-clockwise on screen.
                    let lx = ox + pen + p.x * u, ly = oy - p.y * u
                    return (x + lx * c + ly * s, y - lx * s + ly * c)
                })
            }
            pen += (g.advance + tracking) * u
        }
        return out
    }
}
