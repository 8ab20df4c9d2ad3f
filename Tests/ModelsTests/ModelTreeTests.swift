import TestSupport
import Testing
import NN
import Tensors
@testable import Models

/// The MAC formulas the zoo used before MACs were traced from the tree (kept as the oracle).
enum MACFormula {
    /// ResNet: every conv 3×3 pad 1, so H_out = (H − 1)/s + 1.
    static func resnet(blocksPerStage n: Int, classes: Int, inputChannels: Int, height: Int, width: Int) -> Int {
        var h = height, w = width
        var total = 9 * inputChannels * 16 * h * w
        var width = 16
        for (planes, stride) in zip([16, 32, 64], [1, 2, 2]) {
            for i in 0..<n {
                let s = i == 0 ? stride : 1
                h = (h - 1) / s + 1
                w = (w - 1) / s + 1
                total += 9 * width * planes * h * w + 9 * planes * planes * h * w
                width = planes
            }
        }
        return total + 64 * classes
    }

    /// VGG: convs keep the size; pools halve it (floor); pool3 only for 64-high inputs.
    static func vgg(_ c: VGGCIFAR.Configuration, classes: Int, inputChannels: Int, height: Int, width: Int) -> Int {
        var h = height, w = width, channels = inputChannels
        var total = 0
        for (g, widths) in c.groups.enumerated() {
            if g > 0 && (g < 4 || height == 64) {
                h /= 2
                w /= 2
            }
            for k in widths {
                total += 9 * channels * k * h * w
                channels = k
            }
        }
        return total + 512 * classes
    }

    static func of(_ name: String, classes: Int, inputChannels: Int, height: Int, width: Int) -> Int {
        switch name {
        case "resnet20": return resnet(blocksPerStage: 3, classes: classes, inputChannels: inputChannels, height: height, width: width)
        case "resnet32": return resnet(blocksPerStage: 5, classes: classes, inputChannels: inputChannels, height: height, width: width)
        case "vgg8": return vgg(.s, classes: classes, inputChannels: inputChannels, height: height, width: width)
        case "vgg11": return vgg(.a, classes: classes, inputChannels: inputChannels, height: height, width: width)
        default: return vgg(.b, classes: classes, inputChannels: inputChannels, height: height, width: width)
        }
    }
}

@Suite("Module tree")
struct ModelTreeTests {
    /// Traced MACs equal the old per-family formulas for every CIFAR zoo model, several sizes, classes and
    /// channels (the Tiny-ImageNet models' MACs are checked against PyTorch hooks and torchvision's counts).
    @Test(arguments: ["resnet20", "resnet32", "vgg8", "vgg11", "vgg13"])
    func tracedMACsMatchFormulas(name: String) throws {
        for (classes, channels, h, w) in [(10, 3, 32, 32), (100, 3, 32, 32), (200, 3, 64, 64), (10, 1, 28, 28), (7, 3, 40, 24)] {
            let expected = MACFormula.of(name, classes: classes, inputChannels: channels, height: h, width: w)
            #expect(try ModelZoo.macs(name, classes: classes, inputChannels: channels, inputSize: (h, w)) == expected,
                    "\(name) \(classes) classes \(channels)×\(h)×\(w)")
        }
    }

    /// The documented figures.
    @Test func resnet20Figures() throws {
        let model = try ModelZoo.make("resnet20", classes: 10, seed: 0)
        #expect(model.macs(inputHeight: 32, inputWidth: 32) == 40_551_040)
        #expect(model.parameterCount == 269_850)
    }

    /// Tracing MACs leaves the model as it was: same layers in the same slots, same state, no BN update.
    @Test func macsLeaveModelUntouched() throws {
        let model = try ModelZoo.make("vgg8", classes: 10, seed: 2)
        let layers = model.modules().map { ObjectIdentifier($0.layer) }
        let state = model.namedTensors().map(\.tensor.array)
        _ = model.macs(inputHeight: 32, inputWidth: 32)
        #expect(model.modules().map { ObjectIdentifier($0.layer) } == layers)
        #expect(model.namedTensors().map(\.tensor.array) == state)
    }

    /// Every zoo row builds a model with its name, and the listing prints one line per row and dataset.
    @Test func zooTableAndListing() throws {
        #expect(ModelZoo.names == ["resnet20", "resnet32", "vgg8", "vgg11", "vgg13", "resnet18", "mobilenetv2", "vgg11_bn",
                                   "shufflenet_v2_x0_5", "squeezenet1_0"])
        for e in ModelZoo.entries {
            let m = try ModelZoo.make(e.name, classes: 10, seed: 0)
            #expect(m.architecture == e.name)
            #expect(m.featurePaths.allSatisfy { m.layer(at: $0) != nil }, "\(e.name)")
            #expect(m.stemPaths.allSatisfy { m.layer(at: $0) != nil }, "\(e.name)")
        }
        let lines = try ModelZoo.listing().split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(lines.contains(["resnet20", "cifar10", "10", "32×32", "269,850", "40.55", "M"]))
        #expect(lines.contains(["vgg13", "cifar100", "100", "32×32", "9,462,180", "284.94", "M"]))
        #expect(lines.contains(["resnet18", "tiny-imagenet", "200", "224×224", "11,279,112", "1813.66", "M"]))
        #expect(lines.contains(["mobilenetv2", "tiny-imagenet", "200", "224×224", "2,480,072", "299.75", "M"]))
        #expect(lines.contains(["vgg11_bn", "tiny-imagenet", "200", "224×224", "9,328,584", "10260.09", "M"]))
        #expect(lines.contains(["shufflenet_v2_x0_5", "tiny-imagenet", "200", "224×224", "546,792", "39.66", "M"]))
        #expect(lines.contains(["squeezenet1_0", "tiny-imagenet", "200", "224×224", "838,024", "749.70", "M"]))
        #expect(lines.filter { $0.count == 7 && $0.last == "M" }.count == ModelZoo.entries.reduce(0) { $0 + $1.datasets.count })
        #expect(ModelZoo.grouped(1_234_567) == "1,234,567" && ModelZoo.grouped(999) == "999")
    }

    /// The zoo reads classes and input channels from a state dict at the paths the model's tree names.
    @Test func geometryFromStateDict() throws {
        let r = try ModelZoo.make("resnet32", classes: 100, inputChannels: 1, seed: 0)
        #expect(r.classifierPath == "linear" && r.inputLayerPath == "conv1")
        let g = try ModelZoo.geometry(of: r.stateDict(), as: "resnet32")
        #expect(g.classes == 100 && g.inputChannels == 1)
        let v = try ModelZoo.make("vgg8", classes: 7, seed: 0)
        #expect(v.classifierPath == "classifier" && v.inputLayerPath == "layer0.0.conv2d")
        #expect(try ModelZoo.geometry(of: v.stateDict(), as: "vgg11").classes == 7)
        #expect(throws: ModelZooError.self) { try ModelZoo.geometry(of: v.stateDict(), as: "resnet20") }
        #expect(throws: ModelZooError.self) { try ModelZoo.geometry(of: v.stateDict(), as: "resnet18") }
    }
}

@Suite("Feature taps")
struct FeatureTapTests {
    /// ResNet f0…f4 and VGG f0…f5 equal the intermediates computed layer by layer (reference §3.1, §3.2).
    @Test func resnetTapsEqualIntermediates() throws {
        let model = try ModelZoo.make("resnet20", classes: 10, seed: 3) as! ResNetCIFAR
        let x = randomTensor([2, 3, 32, 32], seed: 4)
        var f: [Tensor] = []
        var h = model.relu.forward(model.bn1.forward(model.conv1.forward(x, mode: .eval), mode: .eval), mode: .eval)
        f.append(h)
        for stage in [model.layer1, model.layer2, model.layer3] {
            h = stage.forward(h, mode: .eval)
            f.append(h)
        }
        f.append(model.flatten.forward(model.pool.forward(h, mode: .eval), mode: .eval))
        let taps = try model.tapFeatures()
        _ = model.forward(x, mode: .eval)
        #expect(taps.map { $0.output!.shape } == [[2, 16, 32, 32], [2, 16, 32, 32], [2, 32, 16, 16], [2, 64, 8, 8], [2, 64]])
        for (i, (tap, expected)) in zip(taps, f).enumerated() {
            #expect(tap.output!.toLayout(.plain).array == expected.toLayout(.plain).array, "f\(i)")
        }
    }

    @Test func vggTapsEqualIntermediates() throws {
        let model = try ModelZoo.make("vgg13", classes: 10, seed: 3) as! VGGCIFAR
        let x = randomTensor([2, 3, 32, 32], seed: 4)
        var f: [Tensor] = []
        var h = x
        for g in 0..<5 {
            if g > 0 && g < 4 { h = model.pools[g - 1].forward(h, mode: .eval) }
            h = model.groups[g].forward(h, mode: .eval)
            f.append(h)
        }
        f.append(model.flatten.forward(model.globalPool.forward(h, mode: .eval), mode: .eval))
        let taps = try model.tapFeatures()
        _ = model.forward(x, mode: .eval)
        #expect(taps.map { $0.output!.shape } == [[2, 64, 32, 32], [2, 128, 16, 16], [2, 256, 8, 8], [2, 512, 4, 4],
                                                   [2, 512, 4, 4], [2, 512]])
        for (i, (tap, expected)) in zip(taps, f).enumerated() {
            #expect(tap.output!.toLayout(.plain).array == expected.toLayout(.plain).array, "f\(i)")
        }
    }

    /// Taps change nothing: same state names, bit-identical logits and gradients; removing them restores
    /// the tree; tapping twice returns the same taps.
    @Test(arguments: ["resnet20", "vgg8"])
    func tapsAreTransparent(name: String) throws {
        let plain = try ModelZoo.make(name, classes: 10, seed: 5)
        let tapped = try ModelZoo.make(name, classes: 10, seed: 5)
        let layers = tapped.modules().map { ObjectIdentifier($0.layer) }
        let taps = try tapped.tapFeatures()
        #expect(try tapped.tapFeatures().map(ObjectIdentifier.init) == taps.map(ObjectIdentifier.init))
        #expect(tapped.taps().map(\.path) == tapped.featurePaths)
        #expect(tapped.namedTensors().map(\.name) == plain.namedTensors().map(\.name))
        let x = randomTensor([3, 3, 16, 16], seed: 6)
        let ya = plain.forward(x, mode: .train), yb = tapped.forward(x, mode: .train)
        #expect(ya.array == yb.array)
        let dy = randomTensor(ya.shape, seed: 7)
        _ = plain.backward(dy)
        _ = tapped.backward(dy)
        for (a, b) in zip(plain.parameters(), tapped.parameters()) { #expect(a.parameter.grad.array == b.parameter.grad.array, "\(a.name)") }
        #expect(plain.forward(x, mode: .eval).array == tapped.forward(x, mode: .eval).array)
        try tapped.removeTaps()
        #expect(tapped.modules().map { ObjectIdentifier($0.layer) } == layers)
        #expect(tapped.taps().isEmpty)
    }

    /// An injected dL/df adds the gradient of Σ f⊙q: parameter gradients equal central differences of
    /// L = Σ y⊙r + Σ f⊙q (f = VGG-8's f1, double-precision sums over the float32 forward).
    @Test func injectedGradientMatchesFiniteDifferences() throws {
        var rng = RNG(seed: 33)
        let model = VGGCIFAR(configuration: .s, classes: 4, rng: &rng)
        let tap = try model.tap(["layer1"])[0]
        let x = randomTensor([4, 3, 8, 8], seed: 34)
        let y0 = model.forward(x, mode: .train)
        let r = randomTensor(y0.shape, seed: 35)
        let q = randomTensor(tap.output!.shape, seed: 36)
        model.zeroGrad()
        tap.injectedGradient = q
        _ = model.backward(r)
        #expect(tap.injectedGradient == nil)

        func dot(_ a: Tensor, _ b: Tensor) -> Double {
            let a = a.toLayout(.plain), b = b.toLayout(.plain)
            return zip(a.array, b.array).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        func loss() -> Double {
            let y = model.forward(x, mode: .train)
            return dot(y, r) + dot(tap.output!, q)
        }
        let h: Float = 1e-3
        let l0 = loss()
        var checked = 0
        for (name, p) in model.parameters() where name.hasPrefix("layer0") || name.hasPrefix("layer1") {
            var pick = RNG(seed: UInt64(name.count))
            for _ in 0..<4 {
                let i = pick.below(p.count)
                let old = p.value[i]
                p.value[i] = old + h
                let lp = loss()
                p.value[i] = old - h
                let lm = loss()
                p.value[i] = old
                if abs(lp + lm - 2 * l0) / (2 * Double(h)) > 4e-3 { continue }  // a ReLU kink within h
                let numeric = (lp - lm) / (2 * Double(h)), analytic = Double(p.grad[i])
                #expect(abs(numeric - analytic) <= 4e-3 + 2e-2 * max(abs(numeric), abs(analytic)),
                        "\(name)[\(i)]: analytic \(analytic) numeric \(numeric)")
                checked += 1
            }
        }
        #expect(checked >= 20)
        // Without the injection the layer-1 gradients differ: the extra term is really added.
        model.zeroGrad()
        _ = model.forward(x, mode: .train)
        _ = model.backward(r)
        let withoutInjection = model.parameters().first { $0.name == "layer1.0.conv2d.weight" }!.parameter.grad.array
        model.zeroGrad()
        _ = model.forward(x, mode: .train)
        tap.injectedGradient = q
        _ = model.backward(r)
        #expect(model.parameters().first { $0.name == "layer1.0.conv2d.weight" }!.parameter.grad.array != withoutInjection)
    }
}
