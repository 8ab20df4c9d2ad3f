import Foundation

/// A learning-rate schedule: a pure function of (epoch, iteration within the epoch), both 0-based, so a
/// resumed run recomputes its learning rate from the counters alone. Set it on the optimizer before
/// every step (per-iteration schedules) or once per epoch (per-epoch schedules ignore `iteration`).
public protocol LRSchedule {
    func learningRate(epoch: Int, iteration: Int) -> Double
}

/// A constant learning rate.
public struct ConstantLR: LRSchedule {
    public var lr: Double
    public init(lr: Double) { self.lr = lr }
    public func learningRate(epoch: Int, iteration: Int) -> Double { lr }
}

/// `torch.optim.lr_scheduler.CosineAnnealingLR(T_max: epochs, eta_min)` stepped once per epoch (CIFAR,
/// reference §4.1/§4.2): the learning rate used during epoch e is
///
///     lr_e = eta_min + (lr0 − eta_min)·(1 + cos(π·e/E))/2          (closed form)
///
/// PyTorch does not evaluate the closed form: each `step()` multiplies the previous rate,
///
///     lr_e = (1 + cos(π·e/E)) / (1 + cos(π·(e−1)/E)) · (lr_{e−1} − eta_min) + eta_min
///     lr_e = lr_{e−1} + (lr0 − eta_min)·(1 − cos(π/E))/2           when (e − 1 − E) mod 2E = 0
///
/// and the two differ in the last bits. `learningRate` replays PyTorch's recursion in Double (the same
/// libm cos as CPython), which reproduces torch's values bit for bit; `closedForm` is kept for
/// comparison (max relative difference against torch ~1e-15 over 400 epochs, see ScheduleTests).
public struct CosineAnnealingLR: LRSchedule {
    public var baseLR: Double
    public var epochs: Int
    public var etaMin: Double

    public init(baseLR: Double, epochs: Int, etaMin: Double = 0) {
        precondition(epochs > 0, "cosine annealing needs epochs > 0, got \(epochs)")
        self.baseLR = baseLR
        self.epochs = epochs
        self.etaMin = etaMin
    }

    public func learningRate(epoch: Int, iteration: Int = 0) -> Double {
        let tMax = Double(epochs)
        var lr = baseLR
        if epoch <= 0 { return lr }
        for e in 1...epoch {
            if (e - 1 - epochs) % (2 * epochs) == 0 {
                lr = lr + (baseLR - etaMin) * (1 - cos(Double.pi / tMax)) / 2
            } else {
                lr = (1 + cos(Double.pi * Double(e) / tMax)) / (1 + cos(Double.pi * Double(e - 1) / tMax))
                    * (lr - etaMin) + etaMin
            }
        }
        return lr
    }

    public func closedForm(epoch: Int) -> Double {
        etaMin + (baseLR - etaMin) * (1 + cos(Double.pi * Double(epoch) / Double(epochs))) / 2
    }
}

/// `torch.optim.lr_scheduler.MultiStepLR(milestones, gamma)` stepped once per epoch: the rate is
/// multiplied by gamma at every milestone epoch reached (PyTorch multiplies the running rate, so two
/// milestones give (lr0·γ)·γ, not lr0·γ²; replayed the same way here; a milestone listed k times
/// multiplies by γ^k once, and milestone 0 applies from the start, as in PyTorch). The reference's FP "step"
/// option decays at epochs 150 and 300 by 0.1 (§4.1).
public struct MultiStepLR: LRSchedule {
    public var baseLR: Double
    public var milestones: [Int]
    public var gamma: Double

    public init(baseLR: Double, milestones: [Int], gamma: Double = 0.1) {
        self.baseLR = baseLR
        self.milestones = milestones
        self.gamma = gamma
    }

    public func learningRate(epoch: Int, iteration: Int = 0) -> Double {
        var lr = baseLR
        for m in Set(milestones).sorted() where m <= epoch {
            let repeats = milestones.filter { $0 == m }.count
            lr = lr * (repeats == 1 ? gamma : pow(gamma, Double(repeats)))
        }
        return lr
    }
}

/// The Tiny-ImageNet schedule (reference §4.3, §8 item 17): linear warm-up from `warmupStartLR` to
/// `peakLR` over `warmupIterations` iterations, then a per-iteration cosine to 0. With the global
/// iteration it = epoch·iterationsPerEpoch + iteration and M = iterationsPerEpoch·epochs:
///
///     it < W:  target = (peak − start)/(W − 1)·(it − 1) + start     (note it − 1: lr(0) < start)
///     it ≥ W:  target = 0 + (peak − 0)·(1 + cos(π·(it − W)/(M − W)))/2
///     lr = (target / start) · start
///
/// The last line mirrors the reference scheduler, which sets `scale = target/base_lr` and multiplies the
/// optimizer's initial rate (the 1e-4 placeholder the SGD is built with) by it; it can move the result
/// by an ulp, so it is kept. Every operation follows the reference's Python order in Double.
public struct WarmupCosineLR: LRSchedule {
    public var peakLR: Double
    public var iterationsPerEpoch: Int
    public var epochs: Int
    public var warmupIterations: Int
    public var warmupStartLR: Double

    public init(peakLR: Double, iterationsPerEpoch: Int, epochs: Int,
                warmupIterations: Int = 2500, warmupStartLR: Double = 1e-4) {
        precondition(iterationsPerEpoch > 0 && epochs > 0, "warm-up cosine needs iterationsPerEpoch, epochs > 0")
        precondition(warmupIterations >= 2 || warmupIterations == 0, "warm-up needs ≥ 2 iterations or none")
        precondition(warmupStartLR > 0, "the warm-up start rate must be positive")
        self.peakLR = peakLR
        self.iterationsPerEpoch = iterationsPerEpoch
        self.epochs = epochs
        self.warmupIterations = warmupIterations
        self.warmupStartLR = warmupStartLR
    }

    public var totalIterations: Int { iterationsPerEpoch * epochs }

    public func learningRate(epoch: Int, iteration: Int) -> Double {
        learningRate(globalIteration: epoch * iterationsPerEpoch + iteration)
    }

    public func learningRate(globalIteration it: Int) -> Double {
        let base = warmupStartLR, w = warmupIterations
        let target: Double
        if w >= 2 && it < w {
            target = (peakLR - base) / Double(w - 1) * Double(it - 1) + base
        } else {
            let ratio = Double(it - w) / Double(totalIterations - w)
            target = 0 + (peakLR - 0) * (1 + cos(Double.pi * ratio)) / 2
        }
        return target / base * base
    }
}
