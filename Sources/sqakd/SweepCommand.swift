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
            abstract: "Train every run of a suite that is not finished (resumes interrupted ones), here or on a Slurm cluster.",
            discussion: """
                Runs are identified by the hash of their resolved config, so rerunning a sweep skips finished runs and resumes \
                interrupted ones from their last checkpoint. A failed run is recorded with its reason and the sweep goes on; the \
                exit status is non-zero when any run failed. A run another process is training (another sweep on the same \
                results, a Slurm task) is waited for, never trained twice.

                --executor slurm submits job arrays instead: the teachers, then their students held by \
                --dependency=afterok on their teacher's task, one task per run running `sqakd train --config <run dir>/config.json` \
                with --cpus-per-task threads. The results folder and this executable must be on a path every node sees. The \
                sweep waits for the tasks (--no-wait: submit and leave; `sqakd sweep status` follows them); running it again \
                submits only what is neither finished nor queued, and a task stopped by its time limit resumes from its last epoch.
                """)

        enum ExecutorKind: String, ExpressibleByArgument, CaseIterable { case local, slurm }

        @Argument(help: "Suite file, or a name under suites/ (e.g. fashion-mnist).") var suite: String
        @OptionGroup var selection: SuiteSelection
        @Option(help: "Where runs train: local (child processes here) or slurm (job arrays).") var executor: ExecutorKind = .local
        @Option(help: "local: runs trained at once; the threads are split among them.") var jobs: Int = 1
        @Option(help: "local: threads of the whole sweep (default: all cores).") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
        @Option(help: "Train only the students whose label contains this (repeatable), e.g. ewgs/W2A2; their teachers come along.") var only: [String] = []
        @Option(help: "Data root (default $SQAKD_DATA or ./data).") var dataRoot: String?
        @Option(help: "slurm: partition (default: the cluster's default).") var partition: String?
        @Option(help: "slurm: account to charge.") var account: String?
        @Option(help: "slurm: time limit per task (MM, HH:MM:SS, D-HH:MM:SS…); a task stopped by it resumes on the next sweep run.") var time: String?
        @Option(help: "slurm: CPUs per task; each run trains with as many threads.") var cpusPerTask: Int = 2
        @Option(help: "slurm: memory per task's node (e.g. 8G).") var mem: String?
        @Option(help: "slurm: an extra #SBATCH option (repeatable), e.g. --sbatch-line=--qos=long.") var sbatchLine: [String] = []
        @Flag(help: "slurm: print the job scripts and submit nothing.") var dryRun = false
        @Flag(help: "slurm: submit and return without waiting for the tasks.") var noWait = false
        @Option(help: "slurm: seconds between two looks at the queue.") var poll: Double = 10

        func run() throws {
            let plan = try selection.plan(suite, only: only)
            let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            let sweepExecutor: any Executor
            var waits = true
            switch executor {
            case .local:
                let slurmOnly: [(String, Bool)] = [("--partition", partition != nil), ("--account", account != nil), ("--time", time != nil),
                                                  ("--mem", mem != nil), ("--sbatch-line", !sbatchLine.isEmpty), ("--dry-run", dryRun),
                                                  ("--no-wait", noWait)]
                if let (flag, _) = slurmOnly.first(where: \.1) { throw ValidationError("\(flag) needs --executor slurm") }
                sweepExecutor = try LocalExecutor(plan: plan, executable: exe, jobs: jobs, threads: threads >= 1 ? cappedThreads(threads) : threads, dataRoot: dataRoot)
            case .slurm:
                let options = SlurmOptions(partition: partition, account: account, time: time, cpusPerTask: cpusPerTask, memory: mem,
                                           extraLines: sbatchLine)
                sweepExecutor = try SlurmExecutor(plan: plan, executable: exe, options: options, dataRoot: dataRoot, dryRun: dryRun,
                                                  poll: poll)
                waits = !(dryRun || noWait)
            }
            let sweep = Sweep(plan: plan, executor: sweepExecutor, dataRoot: dataRoot)
            sweep.waitsForRuns = waits
            let summary = try sweep.run()
            if !summary.failures.isEmpty { throw ExitCode(1) }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a suite's grid with the state of every run.")

        @Argument(help: "Suite file, or a name under suites/.") var suite: String
        @OptionGroup var selection: SuiteSelection

        func run() throws {
            print(SweepStatus.reading(try selection.plan(suite)).render(), terminator: "")
        }
    }
}
