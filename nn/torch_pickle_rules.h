// The unpickling rules for a torch.save'd state_dict (used by nn/torch_checkpoint.cpp only): which
// globals may appear, what REDUCE of each builds, and what a persistent id refers to. See
// torch_checkpoint.h for the list and pickle.h for the machine.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nn/pickle.h"
#include "nn/safetensors.h"

namespace unipelt {

// A persistent id ('storage', type, key, location, numel[, view]) as the pickle declared it.
struct TorchStorageRef {
  std::string key;     // the storage's record name (zip: data/<key>) or key in the legacy stream
  StDType dtype = StDType::F32;
  int64_t numel = 0;   // elements visible through this reference
  int64_t offset = 0;  // legacy storage views: first element of the view in the root storage
};

// A call of torch._utils._rebuild_tensor_v2, before the state_dict gives it a name.
struct TorchTensorRecord {
  size_t storage = 0;  // index into TorchPickleState::storages
  std::vector<int64_t> shape, stride;
  int64_t offset = 0;  // storage_offset, in elements of the reference
};

struct TorchPickleState {
  bool legacy = false;  // legacy persistent ids have a sixth field (the view)
  std::vector<TorchStorageRef> storages;
  std::vector<TorchTensorRecord> tensors;
  std::map<std::string, std::pair<StDType, int64_t>> declared;  // root storage key -> (dtype, numel)
};

// Rules that record storages and tensors in `state` (which must outlive the unpickling). Pickle values
// they create: Object "storage" / "tensor" with `integer` the index into state.storages / tensors.
UnpickleRules torch_state_dict_rules(TorchPickleState& state);

}  // namespace unipelt
