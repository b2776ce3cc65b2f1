// The restricted unpickler (see pickle.h): a stack machine for the opcodes of pickle protocols 2-5
// that torch.save's state_dicts use. Python's Lib/pickletools.py documents every opcode.
#include "nn/pickle.h"

#include <bit>
#include <cstring>
#include <stdexcept>
#include <unordered_map>

namespace unipelt {

namespace {

using Kind = PickleValue::Kind;

// Every opcode of protocols 0-5, so that a refused one can be named. `allowed` marks the ones this
// machine executes: what Python's pickler writes for dicts, lists, tuples, str, int, float, bool,
// None, globals, REDUCE/BUILD and persistent ids at protocol >= 2 — all a state_dict needs.
struct Opcode {
  uint8_t code;
  const char* name;
  bool allowed;
};
constexpr Opcode kOpcodes[] = {
    {'(', "MARK", true},          {'.', "STOP", true},          {'0', "POP", false},
    {'1', "POP_MARK", false},     {'2', "DUP", false},          {'F', "FLOAT", false},
    {'I', "INT", false},          {'J', "BININT", true},        {'K', "BININT1", true},
    {'L', "LONG", false},         {'M', "BININT2", true},       {'N', "NONE", true},
    {'P', "PERSID", false},       {'Q', "BINPERSID", true},     {'R', "REDUCE", true},
    {'S', "STRING", false},       {'T', "BINSTRING", false},    {'U', "SHORT_BINSTRING", false},
    {'V', "UNICODE", false},      {'X', "BINUNICODE", true},    {'a', "APPEND", true},
    {'b', "BUILD", true},         {'c', "GLOBAL", true},        {'d', "DICT", false},
    {'}', "EMPTY_DICT", true},    {'e', "APPENDS", true},       {'g', "GET", false},
    {'h', "BINGET", true},        {'i', "INST", false},         {'j', "LONG_BINGET", true},
    {'l', "LIST", false},         {']', "EMPTY_LIST", true},    {'o', "OBJ", false},
    {'p', "PUT", false},          {'q', "BINPUT", true},        {'r', "LONG_BINPUT", true},
    {'s', "SETITEM", true},       {'t', "TUPLE", true},         {')', "EMPTY_TUPLE", true},
    {'u', "SETITEMS", true},      {'G', "BINFLOAT", true},      {0x80, "PROTO", true},
    {0x81, "NEWOBJ", false},      {0x82, "EXT1", false},        {0x83, "EXT2", false},
    {0x84, "EXT4", false},        {0x85, "TUPLE1", true},       {0x86, "TUPLE2", true},
    {0x87, "TUPLE3", true},       {0x88, "NEWTRUE", true},      {0x89, "NEWFALSE", true},
    {0x8a, "LONG1", true},        {0x8b, "LONG4", false},       {'B', "BINBYTES", false},
    {'C', "SHORT_BINBYTES", false}, {0x8c, "SHORT_BINUNICODE", true}, {0x8d, "BINUNICODE8", false},
    {0x8e, "BINBYTES8", false},   {0x8f, "EMPTY_SET", false},   {0x90, "ADDITEMS", false},
    {0x91, "FROZENSET", false},   {0x92, "NEWOBJ_EX", false},   {0x93, "STACK_GLOBAL", true},
    {0x94, "MEMOIZE", true},      {0x95, "FRAME", true},        {0x96, "BYTEARRAY8", false},
    {0x97, "NEXT_BUFFER", false}, {0x98, "READONLY_BUFFER", false}};

const Opcode* find_opcode(uint8_t code) {
  for (const Opcode& op : kOpcodes)
    if (op.code == code) return &op;
  return nullptr;
}

class Machine {
 public:
  Machine(std::span<const std::byte> data, size_t offset, const UnpickleRules& rules, const std::string& where)
      : data_(data), pos_(offset), rules_(rules), where_(where) {}

  PickleRef run(size_t* end) {
    while (true) {
      op_pos_ = pos_;
      const uint8_t code = u8();
      const Opcode* op = find_opcode(code);
      if (!op) fail("unknown opcode 0x" + hex(code) + " (not a pickle, or a corrupt one)");
      if (!op->allowed)
        fail(std::string("opcode ") + op->name + " is not allowed in a weights-only checkpoint (a state_dict never "
                                                 "needs it; refusing the file)");
      if (code == '.') break;
      execute(code);
    }
    if (stack_.size() != 1 || !marks_.empty())
      fail("STOP with " + std::to_string(stack_.size()) + " values on the stack (expected exactly 1)");
    if (end) *end = pos_;
    return stack_.back();
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(where_ + ": byte " + std::to_string(op_pos_) + ": " + what);
  }
  static std::string hex(unsigned v) {
    const char* digits = "0123456789abcdef";
    return std::string{digits[(v >> 4) & 15], digits[v & 15]};
  }

  // ---- reading operands (each checks that the bytes exist) ----
  const std::byte* take(uint64_t n) {
    if (n > data_.size() - pos_)
      fail("needs " + std::to_string(n) + " more bytes, but the data ends after " +
           std::to_string(data_.size() - pos_) + " (truncated)");
    const std::byte* p = data_.data() + pos_;
    pos_ += static_cast<size_t>(n);
    return p;
  }
  template <class T>
  T le() {
    T v;
    std::memcpy(&v, take(sizeof v), sizeof v);  // pickle operands are little-endian, like the hosts we run on
    return v;
  }
  uint8_t u8() {
    if (pos_ >= data_.size()) fail("the data ends without a STOP opcode (truncated)");
    return static_cast<uint8_t>(data_[pos_++]);
  }
  std::string text(uint64_t n) {
    const std::byte* p = take(n);
    return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
  }
  std::string line() {  // GLOBAL's operands: "module\n" and "name\n"
    size_t start = pos_;
    while (pos_ < data_.size() && data_[pos_] != std::byte{'\n'}) ++pos_;
    if (pos_ >= data_.size()) fail("GLOBAL operand has no end of line (truncated)");
    return std::string(reinterpret_cast<const char*>(data_.data() + start), pos_++ - start);
  }

  // ---- the stack ----
  void push(PickleRef v) { stack_.push_back(std::move(v)); }
  PickleRef pop() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("pops from an empty stack");
    PickleRef v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  std::vector<PickleRef> pop_to_mark() {
    if (marks_.empty()) fail("needs a MARK, but none is set");
    std::vector<PickleRef> items(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  PickleRef& top() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("reads an empty stack");
    return stack_.back();
  }

  // ---- values ----
  PickleRef scalar(Kind kind) { return make_pickle_value(kind); }
  PickleRef integer(int64_t v) {
    PickleRef r = scalar(Kind::Int);
    r->integer = v;
    return r;
  }
  // Marks `child` as stored inside `parent` and updates the parent's depth.
  void adopt(PickleValue& parent, PickleValue& child) {
    if (&parent == &child) fail(std::string("stores a ") + parent.kind_name() + " inside itself");
    child.stored = true;
    parent.depth = std::max(parent.depth, child.depth + 1);
    if (parent.depth > kMaxPickleDepth)
      fail("containers nest deeper than " + std::to_string(kMaxPickleDepth) + " levels");
  }
  PickleRef tuple(std::vector<PickleRef> items) {
    PickleRef t = scalar(Kind::Tuple);
    t->depth = 1;
    for (PickleRef& item : items) adopt(*t, *item);
    t->items = std::move(items);
    return t;
  }
  PickleValue& modifiable(Kind kind, const char* op) {
    PickleValue& target = *top();
    if (target.kind != kind)
      fail(std::string(op) + " on a " + target.kind_name() + " (expected a " +
           (kind == Kind::Dict ? "dict" : "list") + ")");
    if (target.stored) fail(std::string(op) + " modifies a container already stored in another (not supported)");
    return target;
  }
  void set_items(std::vector<PickleRef> flat) {
    if (flat.size() % 2) fail("SETITEMS with an odd number of values (keys and values come in pairs)");
    PickleValue& dict = modifiable(Kind::Dict, "SETITEMS");
    for (size_t i = 0; i < flat.size(); i += 2) {
      adopt(dict, *flat[i]);
      adopt(dict, *flat[i + 1]);
      dict.entries.emplace_back(flat[i], flat[i + 1]);
    }
  }
  void append_items(std::vector<PickleRef> items) {
    PickleValue& list = modifiable(Kind::List, "APPENDS");
    for (PickleRef& item : items) {
      adopt(list, *item);
      list.items.push_back(item);
    }
  }

  // ---- globals and calls ----
  PickleRef global(const std::string& module, const std::string& name) {
    const std::string full = module + "." + name;
    if (!rules_.allowed_globals.count(full)) {
      std::string allowed;
      for (const auto& g : rules_.allowed_globals) allowed += (allowed.empty() ? "" : ", ") + g;
      fail("global '" + full + "' is not allowed: a weights-only checkpoint may reference only " + allowed +
           " (a file naming anything else may try to run code; it was not loaded)");
    }
    PickleRef g = scalar(Kind::Global);
    g->text = full;
    return g;
  }
  PickleRef reduce(const PickleRef& callable, const PickleRef& args) {
    if (!callable->is(Kind::Global)) fail(std::string("REDUCE calls a ") + callable->kind_name() + ", not a global");
    if (!args->is(Kind::Tuple)) fail(std::string("REDUCE arguments are a ") + args->kind_name() + ", not a tuple");
    try {
      return rules_.reduce(callable->text, *args);
    } catch (const std::runtime_error& e) {
      fail(callable->text + "(...): " + e.what());
    }
  }
  void build() {
    PickleRef state = pop();
    PickleValue& target = *top();
    // OrderedDict.__reduce__ passes the instance's __dict__ as state: a state_dict's `_metadata`
    // (module versions). Setting attributes is all BUILD does for it; we have no attributes to set.
    if (!target.is(Kind::Dict) || !(state->is(Kind::Dict) || state->is(Kind::None)))
      fail(std::string("BUILD of a ") + target.kind_name() + " with a " + state->kind_name() +
           " state is not allowed (only an OrderedDict's attribute dict)");
  }
  PickleRef persistent(const PickleRef& pid) {
    if (!rules_.persistent_load) fail("persistent ids are not allowed here");
    try {
      return rules_.persistent_load(*pid);
    } catch (const std::runtime_error& e) {
      fail(std::string("persistent id: ") + e.what());
    }
  }

  void execute(uint8_t code);
  void execute_memo(uint8_t code);
  void execute_scalar(uint8_t code);

  std::span<const std::byte> data_;
  size_t pos_, op_pos_ = 0;
  const UnpickleRules& rules_;
  const std::string& where_;
  std::vector<PickleRef> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, PickleRef> memo_;
};

void Machine::execute_memo(uint8_t code) {
  if (code == 'q' || code == 'r' || code == 0x94) {  // BINPUT, LONG_BINPUT, MEMOIZE
    const uint32_t index = code == 'q' ? u8() : code == 'r' ? le<uint32_t>() : static_cast<uint32_t>(memo_.size());
    memo_[index] = top();
    return;
  }
  const uint32_t index = code == 'h' ? u8() : le<uint32_t>();  // BINGET, LONG_BINGET
  auto it = memo_.find(index);
  if (it == memo_.end()) fail("memo entry " + std::to_string(index) + " was never stored");
  push(it->second);
}

void Machine::execute_scalar(uint8_t code) {
  switch (code) {
    case 'N': push(scalar(Kind::None)); return;
    case 0x88: case 0x89: {
      PickleRef b = scalar(Kind::Bool);
      b->boolean = code == 0x88;
      push(b);
      return;
    }
    case 'J': push(integer(le<int32_t>())); return;
    case 'K': push(integer(u8())); return;
    case 'M': push(integer(le<uint16_t>())); return;
    case 0x8a: {  // LONG1: n bytes of two's complement, little-endian
      const uint8_t n = u8();
      const std::byte* p = take(n);
      if (n > 8) {
        PickleRef big = scalar(Kind::BigInt);
        big->text.assign(reinterpret_cast<const char*>(p), n);
        push(big);
        return;
      }
      uint64_t v = 0;
      for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
      if (n > 0 && n < 8 && (static_cast<uint8_t>(p[n - 1]) & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
      push(integer(static_cast<int64_t>(v)));
      return;
    }
    case 'G': {  // BINFLOAT: big-endian IEEE double
      uint64_t bits = 0;
      const std::byte* p = take(8);
      for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<uint8_t>(p[i]);
      PickleRef f = scalar(Kind::Float);
      f->real = std::bit_cast<double>(bits);
      push(f);
      return;
    }
    default: {  // BINUNICODE, SHORT_BINUNICODE
      const uint64_t n = code == 'X' ? le<uint32_t>() : u8();
      PickleRef s = scalar(Kind::String);
      s->text = text(n);
      push(s);
    }
  }
}

void Machine::execute(uint8_t code) {
  switch (code) {
    case 0x80: {
      const uint8_t protocol = u8();
      if (protocol < 2 || protocol > 5) fail("pickle protocol " + std::to_string(protocol) + " (expected 2 to 5)");
      return;
    }
    case 0x95: le<uint64_t>(); return;  // FRAME: a length hint for buffered readers; we hold everything
    case '(': marks_.push_back(stack_.size()); return;
    case '}': case ']': {
      PickleRef c = scalar(code == '}' ? Kind::Dict : Kind::List);
      c->depth = 1;
      push(c);
      return;
    }
    case ')': push(tuple({})); return;
    case 't': push(tuple(pop_to_mark())); return;
    case 0x85: case 0x86: case 0x87: {
      std::vector<PickleRef> items(code - 0x84);
      for (size_t i = items.size(); i-- > 0;) items[i] = pop();
      push(tuple(std::move(items)));
      return;
    }
    case 's': {
      PickleRef value = pop(), key = pop();
      set_items({key, value});
      return;
    }
    case 'u': set_items(pop_to_mark()); return;
    case 'a': append_items({pop()}); return;
    case 'e': append_items(pop_to_mark()); return;
    case 'c': {
      const std::string module = line();
      push(global(module, line()));
      return;
    }
    case 0x93: {
      PickleRef name = pop(), module = pop();
      if (!name->is(Kind::String) || !module->is(Kind::String)) fail("STACK_GLOBAL needs two strings");
      push(global(module->text, name->text));
      return;
    }
    case 'R': {
      PickleRef args = pop(), callable = pop();
      push(reduce(callable, args));
      return;
    }
    case 'b': build(); return;
    case 'Q': push(persistent(pop())); return;
    case 'q': case 'r': case 0x94: case 'h': case 'j': execute_memo(code); return;
    default: execute_scalar(code);
  }
}

}  // namespace

const char* PickleValue::kind_name() const {
  switch (kind) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: case Kind::BigInt: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Global: return "global";
    case Kind::Object: return text.c_str();
  }
  return "?";
}

PickleRef make_pickle_value(PickleValue::Kind kind) {
  auto v = std::make_shared<PickleValue>();
  v->kind = kind;
  return v;
}

PickleRef unpickle(std::span<const std::byte> data, size_t offset, const UnpickleRules& rules, const std::string& where,
                   size_t* end) {
  if (offset > data.size()) throw std::runtime_error(where + ": starts past the end of the data");
  Machine machine(data, offset, rules, where);
  return machine.run(end);
}

}  // namespace unipelt
