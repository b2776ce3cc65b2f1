// A restricted unpickler: reads the subset of Python's pickle format that a PyTorch state_dict uses,
// and nothing else. It never runs code, so a hostile file cannot either.
//
// A pickle is a program for a small stack machine: each opcode pushes a value (an int, a string, an
// empty dict), builds one from values on the stack (a tuple), stores it in a memo or reads it back,
// or *calls* something: GLOBAL names any Python object by module and name and REDUCE calls it with a
// tuple of arguments. Python's own unpickler imports and calls whatever the file names
// (`posix.system`, say) — which is why loading an untrusted .bin with torch.load(weights_only=False)
// can run arbitrary code. This machine differs in two ways (the guarantee of
// torch.load(weights_only=True)):
//
//   * only the opcodes listed in pickle.cpp are understood; any other opcode is an error naming it
//     (INST, OBJ, NEWOBJ, EXT*, text-protocol opcodes, ...);
//   * GLOBAL / STACK_GLOBAL may name only the globals of UnpickleRules::allowed_globals, and REDUCE
//     calls nothing itself: it hands (global name, argument tuple) to UnpickleRules::reduce, which
//     builds a value in C++ (torch_checkpoint.cpp: an OrderedDict, a tensor record) or refuses.
//
// Limits against hostile input: every length is checked against the bytes that remain, containers
// nest at most kMaxPickleDepth deep, and a container cannot be modified once it is stored inside
// another (so no reference cycles can be built). Errors are std::runtime_error("WHERE: byte N: ...").
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace unipelt {

constexpr int kMaxPickleDepth = 64;

struct PickleValue;
using PickleRef = std::shared_ptr<PickleValue>;

struct PickleValue {
  enum class Kind { None, Bool, Int, BigInt, Float, String, Tuple, List, Dict, Global, Object };
  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;  // Int; Object: the index the rules gave it
  double real = 0.0;
  // String (UTF-8), BigInt (two's complement little-endian bytes of an int beyond 64 bits),
  // Global ("module.name"), Object (its type, chosen by the rules: "storage", "tensor", ...).
  std::string text;
  std::vector<PickleRef> items;                           // Tuple, List
  std::vector<std::pair<PickleRef, PickleRef>> entries;  // Dict, in insertion order (OrderedDict too)
  int depth = 0;        // 0 for scalars, 1 + the deepest item for containers
  bool stored = false;  // placed inside another container: no longer modifiable

  const char* kind_name() const;  // "int", "str", "tuple", ... as Python would call it
  bool is(Kind k) const { return kind == k; }
};

PickleRef make_pickle_value(PickleValue::Kind kind);

// What a file may reference, and what REDUCE and persistent ids turn into.
struct UnpickleRules {
  std::set<std::string> allowed_globals;  // "module.name"
  // REDUCE of an allowed global with its argument tuple; returns the value to push (or throws).
  std::function<PickleRef(const std::string& global, const PickleValue& args)> reduce;
  // BINPERSID: the persistent id (a tuple for torch); returns the value to push (or throws).
  // Empty: persistent ids are refused.
  std::function<PickleRef(const PickleValue& pid)> persistent_load;
};

// Unpickles the pickle starting at data[offset]. Returns the value and sets *end (when non-null) to
// the offset just after its STOP opcode, where the next pickle of a stream starts. `where` begins
// every error message (e.g. "PyTorch checkpoint 'model.bin' (data.pkl)").
PickleRef unpickle(std::span<const std::byte> data, size_t offset, const UnpickleRules& rules,
                   const std::string& where, size_t* end = nullptr);

}  // namespace unipelt
