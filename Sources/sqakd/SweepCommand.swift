import ArgumentParser
import Bench
import Foundation
import Training

/// Where a suite's runs live and which of them to take: options shared by `sweep run`, `sweep status`,
/// `report` and `check`.
struct SuiteSelection: ParsableArguments {
    @Option(help: "Budget: paper, reduced or smoke (default: the suite's default_budget).") var budget: String?
    @Option(help: "Number of seeds (default: the suite's seeds).") var seeds: Int?
    @Option(help: "Results root; runs go to <root>/<suite>/runs/<run id>.") var results: String = "results"

    func plan(_ suite: String, only: [String] = []) throws -> Plan {
        let s = try Suite.load(try Suite.locate(suite))
        return try Plan(suite: s, budget: budget, seeds: seeds, resultsRoot: URL(fileURLWithPath: results), only: only)
    }
}

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep", abstract: "Train a suite's grid: teachers first, every quantizer × bit-width with and without SQAKD.",
        subcommands: [Run.self, Status.self])

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train every run of a suite that is not finished (resumes interrupted ones).",
            discussion: "Runs are identified by the hash of their resolved config, so rerunning a sweep skips finished runs and resumes interrupted ones from their last checkpoint. A failed run is recorded with its reason and the sweep goes on; the exit status is non-zero when any run failed.")

        @Argument(help: "Suite file, or a name under suites/ (e.g. fashion-mnist).") var suite: String
        @OptionGroup var selection: SuiteSelection
        @Option(help: "Runs trained at once; the threads are split among them.") var jobs: Int = 1
        @Option(help: "Threads of the whole sweep (default: all cores).") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
        @Option(help: "Train only the students whose label contains this (repeatable), e.g. ewgs/W2A2; their teachers come along.") var only: [String] = []
        @Option(help: "Data root (default $SQAKD_DATA or ./data).") var dataRoot: String?

        func run() throws {
            let plan = try selection.plan(suite, only: only)
            let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            let executor = try LocalExecutor(plan: plan, executable: exe, jobs: jobs, threads: threads >= 1 ? cappedThreads(threads) : threads, dataRoot: dataRoot)
            let summary = try Sweep(plan: plan, executor: executor, dataRoot: dataRoot).run()
            if !summary.failures.isEmpty { throw ExitCode(1) }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a suite's grid with the state of every run.")

        @Argument(help: "Suite file, or a name under suites/.") var suite: String
        @OptionGroup var selection: SuiteSelection

        func run() throws {
            print(SweepStatus(plan: try selection.plan(suite)).render(), terminator: "")
        }
    }
}
