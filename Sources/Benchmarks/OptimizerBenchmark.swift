import Foundation
import Kernels
import NN
import Tensors

/// Update throughput of SGD (Nesterov momentum 0.9) and Adam on one parameter of each size in `sizes`
/// (default: ResNet-20's 0.27 M and ResNet-18's 11.2 M) with each thread count in `threads`: median of 7
/// steps after one warm-up, in milliseconds. Each line also says whether the parameter after the steps is
/// bit-identical to the one of the first thread count (the kernels split work in fixed chunks).
public func optimizerBenchmark(sizes: [Int] = [270_000, 11_200_000], threads: [Int] = [1, 2]) -> [String] {
    var lines: [String] = []
    for n in sizes {
        let grad = randomTensor([n], seed: 5)
        var first: [String: [Float]] = [:]
        for t in threads {
            Threads.set(t)
            for kind in ["SGD nesterov", "Adam"] {
                let p = Parameter(randomTensor([n], seed: 4))
                p.grad.copyElements(from: grad)
                let group = ParameterGroup(parameters: [("p", p)], lr: 0.01, weightDecay: 1e-4)
                let opt: Optimizer = kind == "Adam" ? Adam(groups: [group]) : SGD(groups: [group], momentum: 0.9, nesterov: true)
                let times = timings(repeats: 7) { opt.step() }
                var line = "\(kind) step, \(n) params, \(t) thread(s): median \(String(format: "%.2f", times.sorted()[3])) ms"
                if let reference = first[kind] {
                    let same = zip(reference, p.value.array).allSatisfy { $0.bitPattern == $1.bitPattern }
                    line += same ? " (bit-identical to \(threads[0]) thread(s))" : " (DIFFERS from \(threads[0]) thread(s))"
                } else {
                    first[kind] = p.value.array
                }
                lines.append(line)
            }
        }
    }
    return lines
}
