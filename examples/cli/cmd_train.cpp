// `unipelt train`: fine-tune a PELT method on a GLUE task with the paper's protocol. Every flag but
// --resume comes from the settings table (train/settings.h), so `unipelt sweep` accepts the same values.
#include <cstdio>
#include <iostream>

#include "datasets/glue.h"
#include "examples/cli/settings_flags.h"
#include "train/distributed.h"
#include "train/sweep.h"
#include "train/trainer.h"

namespace {

struct TrainOptions {
  std::shared_ptr<unipelt::cli::SettingValues> values = std::make_shared<unipelt::cli::SettingValues>();
  bool resume = false;
};

}  // namespace

namespace unipelt::cli {

void add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  auto* cmd = app.add_subcommand("train", "Train a method on a GLUE task (paper protocol: K train examples, the next "
                                          "1,000 as dev, GLUE dev as test) and report the test metric");
  std::vector<std::string> flags;
  for (const Setting& s : train_settings()) flags.push_back(s.flag);
  add_setting_flags(cmd, o->values, flags, /*required_too=*/true);
  cmd->add_flag("--resume", o->resume, "Continue an interrupted run in --out (the same settings are required); on an "
                                       "empty or missing --out, start it");
  cmd->callback([o] {
    die_with_sweep_parent();
    const TrainConfig config = train_config_from_flags(*o->values);
    // `mpirun -np N unipelt train ...`: N ranks train one model (train/distributed.h); else one process.
    Communicator& comm = process_communicator();
    try {
      const TrainResult result = train_glue(config, o->resume, std::cerr, comm);
      if (!result.finished) throw Exit{kExitInterrupted};
      if (!result.test.empty() && comm.rank() == 0)
        std::cout << "test " << task_info(config.task).metric << " " << result.test.at("main") << "\n";
    } catch (const std::exception& e) {
      if (comm.size() == 1) throw;
      // The other ranks may be waiting in a reduction for this one: end them all, with this message.
      std::fprintf(stderr, "error (rank %d of %d): %s\n", comm.rank(), comm.size(), e.what());
      comm.abort(dynamic_cast<const std::invalid_argument*>(&e) ? kExitUsage : kExitRuntimeError);
    }
  });
}

}  // namespace unipelt::cli
