// Anomaly detection: call stacks captured at forward time with Boost.Stacktrace (header-only
// capture, _Unwind_Backtrace), resolved to function, file and line only when an error is
// reported. Resolution uses, in this order of preference:
//  - GCC's libbacktrace in-process, when built with XGRAD_HAVE_LIBBACKTRACE and linked with
//    -lbacktrace (Debian: libgcc-12-dev ships backtrace.h and libbacktrace.a);
//  - otherwise binutils' addr2line, run once per binary with the addresses made relative to
//    its load address (position-independent executables and shared libraries). Boost 1.74's
//    own addr2line backend passes absolute addresses and so resolves nothing in a PIE.
#include "xgrad/autograd/anomaly.hpp"

#include <cxxabi.h>
#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <boost/stacktrace/safe_dump_to.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>

#include "viz/subprocess.hpp"

#ifdef XGRAD_HAVE_LIBBACKTRACE
#include <backtrace.h>
#endif

namespace xgrad::autograd {

// ---- the mode -------------------------------------------------------------------------------

namespace {
constexpr unsigned kAnomalyFlags = detail::record_call_stack | detail::check_gradients;
}

detect_anomaly::detect_anomaly(bool enabled) : prev_(detail::record_flags()) {
  set_anomaly_enabled(enabled);
}
detect_anomaly::~detect_anomaly() {
  detail::set_record_flags((detail::record_flags() & ~kAnomalyFlags) | (prev_ & kAnomalyFlags));
}

bool is_anomaly_enabled() {
  return (detail::record_flags() & detail::check_gradients) != 0;
}

void set_anomaly_enabled(bool enabled) {
  const unsigned f = detail::record_flags();
  detail::set_record_flags(enabled ? (f | kAnomalyFlags) : (f & ~kAnomalyFlags));
}

// ---- capture ----------------------------------------------------------------------------

std::vector<void*> detail::capture_call_stack() {
  constexpr std::size_t kMaxFrames = 64;
  void* frames[kMaxFrames + 1] = {};
  const std::size_t n = boost::stacktrace::safe_dump_to(0, frames, sizeof frames);
  std::vector<void*> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n && frames[i]; ++i) out.push_back(frames[i]);
  return out;
}

// ---- resolution -------------------------------------------------------------------------

namespace {

std::string demangle(const char* name) {
  if (!name || !*name) return "";
  if (name[0] != '_' || name[1] != 'Z') return name;
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = (status == 0 && d) ? d : name;
  std::free(d);
  return out;
}

// A return address points after its call instruction; the call itself is one byte earlier
// (which matters when the call is the last instruction of a source line).
std::uintptr_t call_address(void* return_address) {
  return reinterpret_cast<std::uintptr_t>(return_address) - 1;
}

#ifdef XGRAD_HAVE_LIBBACKTRACE

backtrace_state* state() {
  static backtrace_state* s = backtrace_create_state(
      nullptr, /*threaded=*/1, [](void*, const char*, int) {}, nullptr);
  return s;
}

// One address -> its inline chain, innermost first (libbacktrace calls back once per frame).
std::vector<SourceLocation> resolve_one(std::uintptr_t pc) {
  std::vector<SourceLocation> frames;
  backtrace_pcinfo(
      state(), pc,
      [](void* data, std::uintptr_t, const char* file, int line, const char* function) {
        auto* out = static_cast<std::vector<SourceLocation>*>(data);
        out->push_back({demangle(function), file ? file : "", file ? line : 0});
        return 0;
      },
      [](void*, const char*, int) {}, &frames);
  if (frames.empty() || frames.back().function.empty()) {
    std::string symbol;
    backtrace_syminfo(
        state(), pc,
        [](void* data, std::uintptr_t, const char* name, std::uintptr_t, std::uintptr_t) {
          if (name) *static_cast<std::string*>(data) = name;
        },
        [](void*, const char*, int) {}, &symbol);
    if (frames.empty()) frames.push_back({});
    if (!symbol.empty()) frames.back().function = demangle(symbol.c_str());
  }
  return frames;
}

std::vector<SourceLocation> resolve(const std::vector<void*>& stack) {
  static std::mutex mutex;  // one state, resolution is rare: keep it simple
  std::lock_guard<std::mutex> lock(mutex);
  std::vector<SourceLocation> out;
  for (void* a : stack) {
    auto frames = resolve_one(call_address(a));
    out.insert(out.end(), frames.begin(), frames.end());
  }
  return out;
}

#else  // addr2line

struct Module {
  std::string file;
  std::uintptr_t bias = 0;  // load address: what addr2line needs subtracted
};

// The loaded object containing `pc` (dl_iterate_phdr: executable and shared libraries).
bool module_of(std::uintptr_t pc, Module& m) {
  struct Query {
    std::uintptr_t pc;
    Module* m;
    bool found;
  } q{pc, &m, false};
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) {
        auto* q = static_cast<Query*>(data);
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const auto& ph = info->dlpi_phdr[i];
          if (ph.p_type != PT_LOAD) continue;
          const std::uintptr_t start = info->dlpi_addr + ph.p_vaddr;
          if (q->pc >= start && q->pc < start + ph.p_memsz) {
            q->m->file = (info->dlpi_name && *info->dlpi_name) ? info->dlpi_name : "";
            q->m->bias = info->dlpi_addr;
            q->found = true;
            return 1;
          }
        }
        return 0;
      },
      &q);
  if (q.found && m.file.empty()) {
    // The main program. Resolved here: in the addr2line process /proc/self/exe is addr2line.
    char buf[4096];
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return false;
    m.file.assign(buf, static_cast<std::size_t>(n));
  }
  return q.found;
}

// "file:line (discriminator 2)" or "??:0" -> file, line.
void parse_location(const std::string& s, SourceLocation& loc) {
  std::string t = s.substr(0, s.find(" ("));
  const auto colon = t.rfind(':');
  if (colon == std::string::npos) return;
  std::string file = t.substr(0, colon);
  if (file == "??") return;
  loc.file = file;
  loc.line = std::atoi(t.c_str() + colon + 1);
}

std::vector<SourceLocation> resolve(const std::vector<void*>& stack) {
  const std::string addr2line = viz::detail::find_program("addr2line");
  // Group the addresses by binary; one addr2line run per binary.
  std::vector<std::vector<SourceLocation> > per_frame(stack.size());
  std::map<std::string, std::vector<std::pair<std::size_t, std::uintptr_t> > > by_file;
  for (std::size_t i = 0; i < stack.size(); ++i) {
    const std::uintptr_t pc = call_address(stack[i]);
    Module m;
    if (module_of(pc, m)) by_file[m.file].emplace_back(i, pc - m.bias);
    Dl_info info{};
    if (::dladdr(reinterpret_cast<void*>(pc), &info) && info.dli_sname)
      per_frame[i].push_back({demangle(info.dli_sname), "", 0});
  }
  if (!addr2line.empty()) {
    for (auto& [file, addrs] : by_file) {
      std::vector<std::string> argv{addr2line, "-a", "-f", "-C", "-i", "-e", file};
      for (auto& [i, a] : addrs) {
        std::ostringstream hex;
        hex << "0x" << std::hex << a;
        argv.push_back(hex.str());
      }
      viz::detail::ProcessResult r;
      try {
        r = viz::detail::run_process(argv);
      } catch (const Error&) {
        continue;
      }
      if (r.exit_code != 0) continue;
      // Output: per address "0x...", then (function, file:line) pairs, innermost first.
      std::istringstream in(r.out);
      std::string line;
      std::size_t k = 0;
      std::vector<SourceLocation>* cur = nullptr;
      while (std::getline(in, line)) {
        if (line.rfind("0x", 0) == 0) {
          if (k >= addrs.size()) break;
          cur = &per_frame[addrs[k++].first];
          cur->clear();
          continue;
        }
        if (!cur) continue;
        SourceLocation loc;
        loc.function = line == "??" ? "" : line;
        if (!std::getline(in, line)) break;
        parse_location(line, loc);
        cur->push_back(loc);
      }
    }
  }
  std::vector<SourceLocation> out;
  for (auto& f : per_frame) {
    if (f.empty()) f.push_back({});
    // With inlining, addr2line names the innermost level after the physical function (the
    // outer levels are named right): drop that name rather than report a wrong one.
    if (f.size() > 1) f.front().function.clear();
    out.insert(out.end(), f.begin(), f.end());
  }
  return out;
}

#endif

// This repository's root: from this file's path at build time (".../src/autograd/anomaly.cpp"),
// or, when that path is relative (ccache's base_dir, -ffile-prefix-map), from the absolute root
// CMake passes in XGRAD_SOURCE_ROOT — debug info names files by absolute path either way.
const std::string& repo_root() {
  static const std::string root = [] {
    std::string f = __FILE__;
    const auto pos = f.rfind("src/autograd/anomaly.cpp");
    std::string r = pos == std::string::npos ? std::string() : f.substr(0, pos);
#if defined(XGRAD_SOURCE_ROOT)
    if (r.empty() || r[0] != '/') r = XGRAD_SOURCE_ROOT;
#endif
    return r;
  }();
  return root;
}

// The qualified name a demangled signature declares: "xgrad::Tensor xgrad::log(...)" ->
// "xgrad::log" (drops the return type of templates and the parameter list).
std::string qualified_name(const std::string& f) {
  int depth = 0;
  std::size_t end = f.size(), start = 0;
  for (std::size_t i = 0; i < f.size(); ++i) {
    const char c = f[i];
    if (c == '<') ++depth;
    if (c == '>' && depth > 0) --depth;
    if (c == '(' && depth == 0 && i > 0) {
      // "operator()" is a name, not a parameter list.
      if (f.compare(i >= 8 ? i - 8 : 0, 8, "operator") == 0) continue;
      end = i;
      break;
    }
    if (c == ' ' && depth == 0) start = i + 1;
  }
  return f.substr(start, end - start);
}

// A frame's file as an absolute path: debug info from a build with relative file names
// (ccache's base_dir) names them from the build folder, "../src/ops/elementwise.cpp".
std::string absolute_file(const std::string& file) {
#if defined(XGRAD_BINARY_ROOT)
  if (!file.empty() && file[0] != '/')
    return (std::filesystem::path(XGRAD_BINARY_ROOT) / file).lexically_normal().string();
#endif
  return file;
}

bool is_library_frame(const SourceLocation& f) {
  const std::string& root = repo_root();
  const std::string file = absolute_file(f.file);
  if (!root.empty() && !file.empty() &&
      (file.rfind(root + "include/xgrad/", 0) == 0 || file.rfind(root + "src/", 0) == 0))
    return true;
  // The installed headers (PREFIX/include/xgrad/...) are the library's too.
  if (f.file.find("/include/xgrad/") != std::string::npos) return true;
  // Inlined frames often carry unqualified names ("_Construct<...>"): tell the standard
  // library and Boost by where their headers live.
  for (const char* dir : {"/include/c++/", "/usr/include/boost/", "/usr/local/include/boost/"})
    if (f.file.find(dir) != std::string::npos) return true;
  const std::string q = qualified_name(f.function);
  for (const char* ns : {"xgrad::", "boost::", "std::", "__gnu_cxx::", "__cxxabiv1::"})
    if (q.rfind(ns, 0) == 0) return true;
  // The C library's start-up code, which calls main().
  for (const char* fn : {"__libc_start", "_start", "__GI_", "clone"})
    if (f.function.rfind(fn, 0) == 0) return true;
  return false;
}

std::string describe(const SourceLocation& loc) {
  std::ostringstream os;
  os << loc.file << ":" << loc.line;
  if (!loc.function.empty()) os << " in " << loc.function;
  return os.str();
}

// "; 'log' was called at file:line in f() (detect_anomaly)", or a hint when it is not known.
std::string where(const Node& node) {
  std::ostringstream os;
  os << "; '" << node.name() << "' ";
  if (!node.debug_info() || node.debug_info()->call_stack.empty()) {
    os << "was recorded while anomaly detection was off: turn it on (detect_anomaly) before the "
          "forward pass too to see where it was called";
  } else if (auto site = call_site(node)) {
    os << "was called at " << describe(*site) << " (detect_anomaly)";
  } else {
    os << "was called from code without debug information: build with -g to see its file and "
          "line (detect_anomaly)";
  }
  return os.str();
}

// Counts NaN and Inf entries of a float tensor.
std::pair<std::int64_t, std::int64_t> count_nonfinite(const Tensor& g) {
  if (!is_floating(g.dtype())) return {0, 0};
  Tensor c = g.contiguous();
  return dispatch_floating(c.dtype(), "detect_anomaly", [&]<class T>() {
    const T* p = c.data_ptr<T>();
    std::int64_t nans = 0, infs = 0;
    for (std::int64_t i = 0; i < c.numel(); ++i) {
      nans += std::isnan(p[i]);
      infs += std::isinf(p[i]);
    }
    return std::pair<std::int64_t, std::int64_t>{nans, infs};
  });
}

}  // namespace

std::vector<SourceLocation> recorded_stack(const Node& node) {
  const NodeDebugInfo* d = node.debug_info();
  if (!d || d->call_stack.empty()) return {};
  return resolve(d->call_stack);
}

std::optional<SourceLocation> call_site(const Node& node) {
  for (const SourceLocation& f : recorded_stack(node))
    if (!f.file.empty() && f.line > 0 && !is_library_frame(f)) return f;
  return std::nullopt;
}

tensor_list detail::apply_checked(Node& node, tensor_list&& grads) {
  tensor_list out;
  try {
    out = node.apply(std::move(grads));
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + where(node));
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (!out[i].defined()) continue;
    auto [nans, infs] = count_nonfinite(out[i]);
    if (nans == 0 && infs == 0) continue;
    std::ostringstream os;
    os << node.name() << ": backward produced "
       << (nans && infs ? "NaN and Inf" : (nans ? "NaN" : "Inf")) << " in the gradient of input "
       << i << " (" << format_shape(out[i].shape()) << " " << dtype_name(out[i].dtype()) << ": "
       << nans << " NaN and " << infs << " Inf of " << out[i].numel() << " entries)" << where(node);
    throw Error(os.str());
  }
  return out;
}

}  // namespace xgrad::autograd
