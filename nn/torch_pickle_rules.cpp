// What a state_dict's pickle may contain, and what each allowed call builds (torch_pickle_rules.h).
#include "nn/torch_pickle_rules.h"

#include <stdexcept>

namespace unipelt {

namespace {

using Kind = PickleValue::Kind;

// The storage classes torch.save names in persistent ids, by element type.
const std::map<std::string, StDType>& storage_types() {
  static const std::map<std::string, StDType> types = {{"torch.FloatStorage", StDType::F32},
                                                       {"torch.HalfStorage", StDType::F16},
                                                       {"torch.BFloat16Storage", StDType::BF16},
                                                       {"torch.DoubleStorage", StDType::F64},
                                                       {"torch.LongStorage", StDType::I64}};
  return types;
}

[[noreturn]] void refuse(const std::string& what) { throw std::runtime_error(what); }

int64_t non_negative_int(const PickleValue& v, const std::string& what) {
  if (!v.is(Kind::Int) || v.integer < 0) refuse(what + " must be a non-negative int, found " + v.kind_name());
  return v.integer;
}

std::vector<int64_t> int_tuple(const PickleValue& v, const std::string& what) {
  if (!v.is(Kind::Tuple)) refuse(what + " must be a tuple of ints, found a " + std::string(v.kind_name()));
  std::vector<int64_t> out;
  for (const PickleRef& item : v.items) out.push_back(non_negative_int(*item, what + " entry"));
  return out;
}

// Backward hooks travel as an OrderedDict; a weights-only load accepts only an empty one.
void expect_no_hooks(const PickleValue& hooks) {
  if (!hooks.is(Kind::Dict)) refuse(std::string("backward_hooks must be an OrderedDict, found a ") + hooks.kind_name());
  if (!hooks.entries.empty()) refuse("the tensor has backward hooks (functions to run), which are not allowed");
}

PickleRef object(const char* type, size_t index) {
  PickleRef o = make_pickle_value(Kind::Object);
  o->text = type;
  o->integer = static_cast<int64_t>(index);
  return o;
}

const PickleValue& tensor_object(const PickleValue& v, const std::string& what) {
  if (!v.is(Kind::Object) || v.text != "tensor") refuse(what + " must be a tensor, found a " + v.kind_name());
  return v;
}

// torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
PickleRef rebuild_tensor(TorchPickleState& state, const PickleValue& args) {
  const auto& a = args.items;
  if (a.size() != 6 && a.size() != 7) refuse("takes 6 or 7 arguments, got " + std::to_string(a.size()));
  if (!a[0]->is(Kind::Object) || a[0]->text != "storage")
    refuse(std::string("the first argument must be a storage (a persistent id), found a ") + a[0]->kind_name());
  TorchTensorRecord t;
  t.storage = static_cast<size_t>(a[0]->integer);
  t.offset = non_negative_int(*a[1], "storage_offset");
  t.shape = int_tuple(*a[2], "size");
  t.stride = int_tuple(*a[3], "stride");
  if (t.shape.size() != t.stride.size())
    refuse("size has " + std::to_string(t.shape.size()) + " dimensions but stride " + std::to_string(t.stride.size()));
  if (!a[4]->is(Kind::Bool)) refuse(std::string("requires_grad must be a bool, found a ") + a[4]->kind_name());
  expect_no_hooks(*a[5]);
  // Newer torch passes Python-level tensor attributes here (e.g. conjugate/negative bits); none is allowed.
  if (a.size() == 7 && !(a[6]->is(Kind::None) || (a[6]->is(Kind::Dict) && a[6]->entries.empty())))
    refuse("tensor metadata (Python attributes of a tensor subclass) is not supported");
  state.tensors.push_back(std::move(t));
  return object("tensor", state.tensors.size() - 1);
}

PickleRef reduce(TorchPickleState& state, const std::string& global, const PickleValue& args) {
  if (global == "collections.OrderedDict") {
    if (!args.items.empty()) refuse("OrderedDict with constructor arguments is not supported");
    PickleRef d = make_pickle_value(Kind::Dict);
    d->depth = 1;
    return d;
  }
  if (global == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(state, args);
  if (global == "torch._utils._rebuild_parameter") {  // nn.Parameter(tensor): the tensor is all we keep
    if (args.items.size() != 3) refuse("takes 3 arguments, got " + std::to_string(args.items.size()));
    tensor_object(*args.items[0], "the first argument");
    if (!args.items[1]->is(Kind::Bool)) refuse("requires_grad must be a bool");
    expect_no_hooks(*args.items[2]);
    return args.items[0];
  }
  refuse("calling " + global + " is not allowed (a storage type only names an element type)");
}

// ('storage', storage_type, key, location, numel) — and a sixth field in the legacy format, the view
// (None, or (view_key, offset, view_numel) for a slice of the root storage).
PickleRef persistent_load(TorchPickleState& state, const PickleValue& pid) {
  const size_t fields = state.legacy ? 6 : 5;
  if (!pid.is(Kind::Tuple) || pid.items.empty() || !pid.items[0]->is(Kind::String))
    refuse(std::string("expected a tuple ('storage', ...), found a ") + pid.kind_name());
  const auto& f = pid.items;
  if (f[0]->text != "storage")
    refuse("'" + f[0]->text + "' persistent ids are not allowed (" +
           (f[0]->text == "module" ? "a pickled nn.Module class with its source code" : "not a storage") + ")");
  if (f.size() != fields)
    refuse("a storage id has " + std::to_string(f.size()) + " fields, expected " + std::to_string(fields));
  if (!f[1]->is(Kind::Global) || !storage_types().count(f[1]->text)) {
    std::string known;
    for (const auto& [name, type] : storage_types()) known += (known.empty() ? "" : ", ") + name;
    refuse("storage type " + (f[1]->is(Kind::Global) ? f[1]->text : std::string(f[1]->kind_name())) +
           " is not supported (expected one of " + known + ")");
  }
  if (!f[2]->is(Kind::String) || !f[3]->is(Kind::String)) refuse("storage key and location must be strings");
  TorchStorageRef ref{f[2]->text, storage_types().at(f[1]->text), non_negative_int(*f[4], "storage numel"), 0};
  auto [it, inserted] = state.declared.emplace(ref.key, std::make_pair(ref.dtype, ref.numel));
  if (!inserted && it->second != std::make_pair(ref.dtype, ref.numel))
    refuse("storage '" + ref.key + "' is declared twice with different types or sizes");
  if (state.legacy && !f[5]->is(Kind::None)) {
    const PickleValue& view = *f[5];
    if (!view.is(Kind::Tuple) || view.items.size() != 3 || !view.items[0]->is(Kind::String))
      refuse("a storage view must be (view_key, offset, numel)");
    ref.offset = non_negative_int(*view.items[1], "view offset");
    const int64_t view_numel = non_negative_int(*view.items[2], "view numel");
    if (ref.offset > ref.numel || view_numel > ref.numel - ref.offset)
      refuse("storage view [" + std::to_string(ref.offset) + ", +" + std::to_string(view_numel) +
             ") runs past storage '" + ref.key + "' of " + std::to_string(ref.numel) + " elements");
    ref.numel = view_numel;
  }
  state.storages.push_back(std::move(ref));
  return object("storage", state.storages.size() - 1);
}

}  // namespace

UnpickleRules torch_state_dict_rules(TorchPickleState& state) {
  UnpickleRules rules;
  rules.allowed_globals = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                           "torch._utils._rebuild_parameter"};
  for (const auto& [name, type] : storage_types()) rules.allowed_globals.insert(name);
  rules.reduce = [&state](const std::string& global, const PickleValue& args) { return reduce(state, global, args); };
  rules.persistent_load = [&state](const PickleValue& pid) { return persistent_load(state, pid); };
  return rules;
}

}  // namespace unipelt
