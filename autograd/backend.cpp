// The backend registry: which Backend runs each Device. The CPU backend is built in; others (cuda/)
// register themselves at start-up, so this file never names them.
#include <array>
#include <stdexcept>
#include <string>

#include "autograd/backend.h"
#include "autograd/cpu_backend.h"

namespace unipelt {

namespace {

constexpr size_t kDevices = 2;  // Device::CPU, Device::CUDA

// A function-local static, so that registrations from other libraries' static initialisers find it
// constructed whatever order the initialisers run in.
std::array<BackendEntry, kDevices>& registry() {
  static std::array<BackendEntry, kDevices> entries{};
  return entries;
}

const BackendEntry& entry(Device device) { return registry()[static_cast<size_t>(device)]; }

}  // namespace

bool register_backend(Device device, BackendEntry e) {
  registry()[static_cast<size_t>(device)] = e;
  return true;
}

bool backend_registered(Device device) { return device == Device::CPU || entry(device).instance != nullptr; }

bool backend_available(Device device) {
  return device == Device::CPU || (backend_registered(device) && entry(device).present());
}

bool cuda_available() { return backend_available(Device::CUDA); }

Backend& backend(Device device) {
  static CpuBackend cpu;
  if (device == Device::CPU) return cpu;
  const std::string name = device_name(device);
  if (!backend_registered(device))
    throw std::runtime_error("device " + name + ": this build has no " + name + " backend (for CUDA: nvcc was not "
                             "found when the project was configured)");
  if (!entry(device).present()) throw std::runtime_error("device " + name + ": no " + name + " device is available on this machine");
  return entry(device).instance();
}

}  // namespace unipelt
