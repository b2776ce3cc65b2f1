// `unipelt gradcheck ops`: every differentiable op, finite-difference checked in float64, one row per
// op with the worst errors over its shapes. `unipelt gradcheck methods`: every method preset on a tiny
// random BERT, one row per check, and with --verbose one row per trainable tensor. Exit status 1 when
// any check fails.
#include <cstdio>
#include <map>
#include <string>

#include "autograd/op_checks.h"
#include "examples/cli/cli.h"

namespace {

int run_gradcheck_ops(const unipelt::GradcheckOptions& options, bool verbose) {
  using namespace unipelt;
  struct Row {
    int shapes = 0;
    double abs = 0, rel = 0, f32 = 0;
    bool passed = true;
    std::string failure;
  };
  std::vector<std::string> order;
  std::map<std::string, Row> rows;
  const auto cases = op_cases();
  for (const OpCase& c : cases) {
    OpCaseResult r = run_op_case(c, options);
    if (!rows.count(c.op)) order.push_back(c.op);
    Row& row = rows[c.op];
    ++row.shapes;
    row.abs = std::max(row.abs, r.grad.max_abs_error);
    row.rel = std::max(row.rel, r.grad.max_rel_error);
    row.f32 = std::max(row.f32, r.f32_max_error);
    if (!r.passed() && row.passed) {
      row.passed = false;
      row.failure = c.shapes + ": " + (r.grad.passed ? "float32 forward differs from float64" : r.grad.worst);
    }
    if (verbose)
      std::printf("  %-14s %-44s abs %.2e rel %.2e f32 %.2e %s\n", c.op.c_str(), c.shapes.c_str(),
                  r.grad.max_abs_error, r.grad.max_rel_error, r.f32_max_error, r.passed() ? "ok" : "FAIL");
  }
  std::printf("gradcheck ops: float64 central differences, eps %.0e, atol %.0e, rtol %.0e; "
              "f32 forward tolerance %.0e\n\n",
              options.eps, options.atol, options.rtol, kF32ForwardTolerance);
  std::printf("%-14s %6s %13s %13s %13s  %s\n", "op", "shapes", "max abs err", "max rel err", "f32 vs f64", "result");
  int failures = 0;
  for (const std::string& op : order) {
    const Row& row = rows[op];
    std::printf("%-14s %6d %13.3e %13.3e %13.3e  %s\n", op.c_str(), row.shapes, row.abs, row.rel, row.f32,
                row.passed ? "pass" : "FAIL");
    if (!row.passed) {
      std::printf("    %s\n", row.failure.c_str());
      ++failures;
    }
  }
  std::printf("\n%zu ops, %zu shapes: %s\n", order.size(), cases.size(),
              failures ? (std::to_string(failures) + " failed").c_str() : "all passed");
  return failures ? 1 : 0;
}

}  // namespace

namespace unipelt::cli {

void add_gradcheck_ops_command(CLI::App& app) {
  auto* gc = app.add_subcommand("gradcheck", "Finite-difference gradient checks (float64, central differences)");
  gc->require_subcommand(1);
  auto options = std::make_shared<unipelt::GradcheckOptions>();
  auto verbose = std::make_shared<bool>(false);
  auto* ops_cmd = gc->add_subcommand("ops", "Check every autograd op on several shapes; one row per op");
  ops_cmd->add_option("--eps", options->eps, "Finite-difference step")->capture_default_str();
  ops_cmd->add_option("--atol", options->atol, "Absolute tolerance (PyTorch gradcheck default)")->capture_default_str();
  ops_cmd->add_option("--rtol", options->rtol, "Relative tolerance (PyTorch gradcheck default)")->capture_default_str();
  ops_cmd->add_flag("-v,--verbose", *verbose, "Also print one line per checked shape");
  ops_cmd->callback([options, verbose] {
    int code = run_gradcheck_ops(*options, *verbose);
    if (code) throw unipelt::cli::Exit{code};
  });
}

}  // namespace unipelt::cli

// ---------------------------------------------------------------------------------------------
// `unipelt gradcheck methods`
// ---------------------------------------------------------------------------------------------
#include "pelt/method_checks.h"

namespace {

struct MethodsOptions {
  unipelt::GradcheckOptions gradcheck;
  bool verbose = false;
  std::vector<std::string> methods;  // empty: every preset
};

int run_gradcheck_methods(const MethodsOptions& o) {
  using namespace unipelt;
  const GradcheckOptions& options = o.gradcheck;
  std::printf("gradcheck methods: loss w.r.t. every trainable parameter, tiny BERT (2 layers, hidden 16, 2 heads), "
              "batch of 3 with padding, float64, eps %.0e atol %.0e rtol %.0e\n\n",
              options.eps, options.atol, options.rtol);
  const char* header = "%-16s %-7s %-15s %8s %9s %12s %12s  %s\n";
  if (!o.verbose)
    std::printf(header, "method", "pool", "task", "tensors", "elements", "max abs err", "max rel err", "result");
  int failures = 0, rows = 0;
  for (const std::string& method : o.methods.empty() ? preset_names() : o.methods) {
    const bool has_gates = preset(method).gated;
    for (GatePool pool : {GatePool::Masked, GatePool::All}) {
      if (!has_gates && pool == GatePool::All) continue;  // pooling only matters where there are gates
      for (bool regression : {false, true}) {
        MethodCheck c = check_method(method, pool, regression, options);
        ++rows;
        if (o.verbose)
          std::printf(header, "method", "pool", "task", "tensors", "elements", "max abs err", "max rel err", "result");
        std::printf("%-16s %-7s %-15s %8lld %9lld %12.3e %12.3e  %s\n", method.c_str(),
                    has_gates ? gate_pool_name(pool) : "-", regression ? "regression" : "classification",
                    static_cast<long long>(c.trainable_tensors), static_cast<long long>(c.result.elements_checked),
                    c.result.max_abs_error, c.result.max_rel_error, c.result.passed ? "pass" : "FAIL");
        if (!c.result.passed) {
          std::printf("    %s\n", c.result.worst.c_str());
          ++failures;
        }
        // Per trainable tensor: which one a wrong backward spoils, and at which element.
        if (o.verbose) std::printf("\n%s\n", input_errors_table(c.result, c.tensor_names).c_str());
        std::fflush(stdout);
      }
    }
  }
  std::printf("\n%d checks: %s\n", rows, failures ? (std::to_string(failures) + " failed").c_str() : "all passed");
  return failures ? 1 : 0;
}

}  // namespace

namespace unipelt::cli {

void add_gradcheck_methods_command(CLI::App& app) {
  auto* gc = app.get_subcommand("gradcheck");
  auto o = std::make_shared<MethodsOptions>();
  auto* cmd = gc->add_subcommand("methods", "Check every method preset (both gate poolings, classification and "
                                            "regression) on a tiny random BERT");
  cmd->add_option("--eps", o->gradcheck.eps, "Finite-difference step")->capture_default_str();
  cmd->add_option("--atol", o->gradcheck.atol, "Absolute tolerance")->capture_default_str();
  cmd->add_option("--rtol", o->gradcheck.rtol, "Relative tolerance")->capture_default_str();
  cmd->add_option("--method", o->methods, "Check only these presets (repeatable; default: all eight)")
      ->check(CLI::IsMember(unipelt::preset_names()));
  cmd->add_flag("-v,--verbose", o->verbose,
                "After each check, one row per trainable tensor: its worst absolute and relative error and the "
                "element (flat index and [multi-index]) where each occurred");
  cmd->callback([o] {
    int code = run_gradcheck_methods(*o);
    if (code) throw unipelt::cli::Exit{code};
  });
}

}  // namespace unipelt::cli
