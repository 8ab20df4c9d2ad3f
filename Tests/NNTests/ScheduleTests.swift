import Foundation
import Testing
@testable import NN

// Learning-rate schedules against torch.optim.lr_scheduler 1.13 and the reference's Tiny-ImageNet
// warm-up cosine (Golden/optim_schedule.json, scripts/make_optim_schedule_golden.py).

@Suite("LR schedules vs PyTorch")
struct ScheduleTests {

    /// The recursive form reproduces torch's CosineAnnealingLR bit for bit (including past T_max); the
    /// closed form agrees to ~1e-15 relative, far below float32 resolution.
    @Test func cosineAnnealingMatchesTorch() throws {
        let golden = try OptimScheduleGolden.load()
        var worstClosed = 0.0
        for c in golden.cosine {
            let s = CosineAnnealingLR(baseLR: c.base_lr, epochs: c.t_max, etaMin: c.eta_min)
            for (e, expected) in c.lrs.enumerated() {
                #expect(s.learningRate(epoch: e, iteration: 0) == expected,
                        "T_max \(c.t_max) epoch \(e): \(s.learningRate(epoch: e, iteration: 0)) vs torch \(expected); \(optimScheduleHint)")
                if e <= c.t_max {
                    worstClosed = max(worstClosed, abs(s.closedForm(epoch: e) - expected) / c.base_lr)
                    #expect(Float(s.closedForm(epoch: e)) == Float(expected) || abs(s.closedForm(epoch: e) - expected) < 1e-18)
                }
            }
        }
        print("cosine annealing: closed form vs torch recursion, max |Δ|/lr0 = \(worstClosed)")
        #expect(worstClosed < 1e-14)
    }

    @Test func cosineAnnealingBasics() {
        let s = CosineAnnealingLR(baseLR: 0.1, epochs: 400)
        #expect(s.learningRate(epoch: 0, iteration: 0) == 0.1)
        #expect(s.learningRate(epoch: 400, iteration: 0) == 0)
        #expect(abs(s.learningRate(epoch: 200, iteration: 0) - 0.05) < 1e-15)
        #expect(s.learningRate(epoch: 7, iteration: 0) == s.learningRate(epoch: 7, iteration: 150))
    }

    @Test func multiStepMatchesTorch() throws {
        let golden = try OptimScheduleGolden.load()
        for c in golden.multistep {
            let s = MultiStepLR(baseLR: c.base_lr, milestones: c.milestones, gamma: c.gamma)
            for (e, expected) in c.lrs.enumerated() {
                #expect(s.learningRate(epoch: e, iteration: 0) == expected,
                        "milestones \(c.milestones) epoch \(e); \(optimScheduleHint)")
            }
        }
    }

    @Test func warmupCosineMatchesReferenceFormula() throws {
        let w = try OptimScheduleGolden.load().warmup_cosine
        let s = WarmupCosineLR(peakLR: w.peak, iterationsPerEpoch: w.iters_per_epoch, epochs: w.epochs,
                               warmupIterations: w.warmup, warmupStartLR: w.start)
        for sample in w.samples {
            let it = Int(sample[0])
            #expect(s.learningRate(globalIteration: it) == sample[1], "iteration \(it); \(optimScheduleHint)")
            #expect(s.learningRate(epoch: it / w.iters_per_epoch, iteration: it % w.iters_per_epoch) == sample[1])
        }
    }

    /// Shape of the Tiny-ImageNet schedule: first value just below 1e-4 (the (it − 1) quirk), peak at
    /// the end of warm-up, 0 at the last iteration, monotone in between.
    @Test func warmupCosineShape() {
        let s = WarmupCosineLR(peakLR: 0.01, iterationsPerEpoch: 1563, epochs: 100)
        #expect(s.totalIterations == 156_300)
        #expect(s.learningRate(epoch: 0, iteration: 0) < 1e-4)
        #expect(abs(s.learningRate(epoch: 0, iteration: 1) - 1e-4) < 1e-19)
        #expect(abs(s.learningRate(globalIteration: 2500) - 0.01) < 1e-17)
        #expect(s.learningRate(globalIteration: 156_300) == 0)
        var previous = s.learningRate(globalIteration: 0)
        for it in stride(from: 1, through: 2500, by: 7) {
            let lr = s.learningRate(globalIteration: it)
            #expect(lr > previous)
            previous = lr
        }
        previous = s.learningRate(globalIteration: 2500)
        for it in stride(from: 2600, through: 156_300, by: 1000) {
            let lr = s.learningRate(globalIteration: it)
            #expect(lr < previous)
            previous = lr
        }
    }
}
