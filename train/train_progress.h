// What the trainer prints while it runs (train/trainer.cpp): the progress line and the metrics.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <map>
#include <ostream>
#include <sstream>
#include <string>

namespace unipelt {

// One progress line: rewritten in place on a terminal, printed every `every` steps otherwise.
class Progress {
 public:
  explicit Progress(std::ostream& out) : out_(out), tty_(isatty(STDERR_FILENO) != 0) {}
  void update(int epoch, int epochs, int64_t step, int64_t steps_in_epoch, int64_t step_in_epoch, double loss,
              double examples_per_s, double eta_s) {
    std::ostringstream line;
    line << "epoch " << epoch << "/" << epochs << "  step " << step_in_epoch << "/" << steps_in_epoch << " (" << step
         << ")  loss " << std::fixed;
    line.precision(4);
    line << loss << "  " << static_cast<int>(examples_per_s) << " ex/s  ETA " << static_cast<int>(eta_s) << "s";
    if (tty_) out_ << "\r" << line.str() << "   " << std::flush;
    else if (step_in_epoch == steps_in_epoch) out_ << line.str() << "\n" << std::flush;
  }
  void message(const std::string& text) { out_ << (tty_ ? "\r" : "") << text << "\n" << std::flush; }

 private:
  std::ostream& out_;
  bool tty_;
};

inline std::string format_metrics(const std::map<std::string, double>& m) {
  std::ostringstream out;
  out.precision(4);
  out << std::fixed;
  bool first = true;
  for (const auto& [k, v] : m) {
    out << (first ? "" : " ") << k << " " << v;
    first = false;
  }
  return out.str();
}

}  // namespace unipelt
