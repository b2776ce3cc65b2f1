// Running a program and reading what it prints (the Slurm commands: sbatch, squeue, sacct).
#pragma once

#include <string>
#include <vector>

namespace unipelt {

// The exit status run_command reports when the program is not on PATH (as a shell does).
constexpr int kCommandNotFound = 127;
// ... and when it ran past its time limit (killed).
constexpr int kCommandTimedOut = 124;

struct CommandResult {
  int exit_code = 0;   // 128 + N when killed by signal N
  std::string output;  // stdout and stderr together, trailing newlines removed
};

// Runs argv (argv[0] looked up on PATH) with stdin from /dev/null and waits at most `timeout_s`
// seconds. Never throws for the program's own failures: they are in the result.
CommandResult run_command(const std::vector<std::string>& argv, double timeout_s = 60.0);

}  // namespace unipelt
