// save_safetensors / load_safetensors: round trips of every dtype, the exact byte layout of the
// format (so that Python's safetensors and any other reader can load the files), atomic
// writes, and a clear xgrad::Error naming the file for every kind of broken file.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.hpp"
#include "xgrad/io/safetensors.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_values;
namespace fs = std::filesystem;

namespace {

// Per-process names: ctest runs the cases of this suite in parallel processes.
fs::path temp(const std::string& name) {
  return fs::temp_directory_path() / ("xgrad_st_" + std::to_string(::getpid()) + "_" + name);
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void spit(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

std::uint64_t u64le(const std::string& s, std::size_t at) {
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= static_cast<std::uint64_t>(static_cast<unsigned char>(s[at + i])) << (8 * i);
  return n;
}

std::string le64(std::uint64_t n) {
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return s;
}

// A file with the given header text and data bytes (the header padded to 8 bytes).
std::string file_bytes(std::string header, const std::string& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  return le64(header.size()) + header + data;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(safetensors)

BOOST_AUTO_TEST_CASE(round_trip_of_every_dtype_and_metadata) {
  const std::int64_t kLabels[4] = {3, -1, 9007199254740993LL,
                                   std::numeric_limits<std::int64_t>::min()};
  const fs::path path = temp("round_trip.safetensors");
  std::map<std::string, Tensor> tensors = {
      {"w32", tensor({{1.5, -2.25, 3.0}, {0.1, 1e-30, -0.0}}, Dtype::float32)},
      {"w64", tensor({std::numeric_limits<double>::denorm_min(), 0.1, -7.0}, Dtype::float64)},
      {"labels", from_data(kLabels, {4})},
      {"mask", tensor({1.0, 0.0, 1.0}, Dtype::boolean)},
      {"scalar", scalar_tensor(42.5, Dtype::float64)},
      {"empty", zeros({0, 3}, Dtype::float32)},
      {"view", tensor({{1.0, 2.0}, {3.0, 4.0}}, Dtype::float64).t()},  // non-contiguous
  };
  const std::map<std::string, std::string> meta = {{"epoch", "3"}, {"note", "ünïcode ✓"}};
  io::save_safetensors(path, tensors, meta);
  auto [loaded, loaded_meta] = io::load_safetensors(path);
  BOOST_CHECK(loaded_meta == meta);
  BOOST_REQUIRE_EQUAL(loaded.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    BOOST_TEST_CONTEXT(name) {
      const Tensor& l = loaded.at(name);
      BOOST_CHECK_EQUAL(l.dtype(), t.dtype());
      BOOST_CHECK(l.shape() == t.shape());
      BOOST_CHECK(l.is_contiguous());
      Tensor c = t.contiguous();
      BOOST_CHECK(std::memcmp(l.raw_data(), c.raw_data(), c.numel() * element_size(c.dtype())) ==
                  0);
    }
  }
  // int64 beyond 2^53 survives exactly.
  BOOST_CHECK_EQUAL(loaded.at("labels").data_ptr<std::int64_t>()[2], 9007199254740993LL);
  expect_values(loaded.at("view"), {2, 2}, {1, 3, 2, 4}, 0);
  fs::remove(path);
}

BOOST_AUTO_TEST_CASE(layout_is_the_safetensors_format) {
  // The layout Python's safetensors reads: u64 LE header length, JSON header, data section.
  const fs::path path = temp("layout.safetensors");
  Tensor a = tensor({{1.0, 2.0}, {3.0, 4.0}}, Dtype::float32);
  Tensor b = tensor({-1.0, 0.5}, Dtype::float64);
  io::save_safetensors(path, {{"a", a}, {"b", b}}, {{"format", "pt"}});
  const std::string bytes = slurp(path);
  const std::uint64_t n = u64le(bytes, 0);
  BOOST_CHECK_EQUAL(n % 8, 0u);  // padded: the data section is 8-byte aligned
  BOOST_REQUIRE_EQUAL(bytes.size(), 8 + n + 4 * 4 + 2 * 8);
  const std::string header = bytes.substr(8, n);
  BOOST_CHECK(header.find_last_not_of(' ') == header.find_last_of('}'));
  const auto j = nlohmann::json::parse(header);
  BOOST_CHECK(j.at("__metadata__") == nlohmann::json({{"format", "pt"}}));
  BOOST_CHECK_EQUAL(j.at("a").at("dtype"), "F32");
  BOOST_CHECK(j.at("a").at("shape") == nlohmann::json({2, 2}));
  BOOST_CHECK(j.at("a").at("data_offsets") == nlohmann::json({0, 16}));
  BOOST_CHECK_EQUAL(j.at("b").at("dtype"), "F64");
  BOOST_CHECK(j.at("b").at("shape") == nlohmann::json({2}));
  BOOST_CHECK(j.at("b").at("data_offsets") == nlohmann::json({16, 32}));
  // Little-endian IEEE values, row-major, right after the header.
  const std::string data = bytes.substr(8 + n);
  const float af[4] = {1, 2, 3, 4};
  const double bd[2] = {-1.0, 0.5};
  BOOST_CHECK(std::memcmp(data.data(), af, 16) == 0);
  BOOST_CHECK(std::memcmp(data.data() + 16, bd, 16) == 0);
  // Exact bytes of a minimal file: {"x":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}
  io::save_safetensors(path, {{"x", tensor({7.0}, Dtype::int64)}});
  const std::string exact = slurp(path);
  const std::string json_text = R"({"x":{"data_offsets":[0,8],"dtype":"I64","shape":[1]}})";
  BOOST_CHECK_EQUAL(exact, file_bytes(json_text, std::string("\x07\0\0\0\0\0\0\0", 8)));
  fs::remove(path);
}

BOOST_AUTO_TEST_CASE(reads_files_written_by_other_writers) {
  // Hand-made like Python's safetensors writes them: tensors in another order, BOOL, a
  // 0-d tensor, whitespace in the JSON, no metadata.
  const fs::path path = temp("foreign.safetensors");
  const std::string data = std::string("\x01\x00\x01", 3) + std::string("\0\0\0\0\0\0\xf0\x3f", 8);
  spit(path, file_bytes(R"({ "one": {"dtype": "F64", "shape": [], "data_offsets": [3, 11]},
                             "m": {"dtype": "BOOL", "shape": [3], "data_offsets": [0, 3]} })",
                        data));
  auto f = io::load_safetensors(path);
  BOOST_CHECK(f.metadata.empty());
  expect_values(f.tensors.at("one"), {}, {1.0}, 0);
  BOOST_CHECK_EQUAL(f.tensors.at("m").dtype(), Dtype::boolean);
  const bool* m = f.tensors.at("m").data_ptr<bool>();
  BOOST_CHECK(m[0] && !m[1] && m[2]);
  fs::remove(path);
}

BOOST_AUTO_TEST_CASE(metadata_alone_reads_only_the_header) {
  const fs::path path = temp("meta_only.safetensors");
  io::save_safetensors(path, {{"big", zeros({1000, 100})}}, {{"epoch", "7"}});
  BOOST_CHECK(
      (io::load_safetensors_metadata(path) == std::map<std::string, std::string>{{"epoch", "7"}}));
  // A file cut short in its data section still has a readable header...
  std::string bytes = slurp(path);
  spit(path, bytes.substr(0, bytes.size() - 1000));
  BOOST_CHECK_EQUAL(io::load_safetensors_metadata(path).at("epoch"), "7");
  expect_error([&] { io::load_safetensors(path); }, {"'big'", "out of range"});
  // ... but one cut short in its header does not.
  spit(path, bytes.substr(0, 20));
  expect_error([&] { io::load_safetensors_metadata(path); }, {"meta_only", "header length"});
  fs::remove(path);
}

BOOST_AUTO_TEST_CASE(write_is_atomic_and_leaves_no_temporary_files) {
  const fs::path dir = temp("atomic_dir");
  fs::create_directories(dir);
  const fs::path path = dir / "c.safetensors";
  io::save_safetensors(path, {{"a", ones({3})}});
  io::save_safetensors(path, {{"a", zeros({5})}});  // replaces the old file
  BOOST_CHECK_EQUAL(io::load_safetensors(path).tensors.at("a").numel(), 5);
  BOOST_CHECK_EQUAL(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  // A failing write (folder missing) throws naming the file and leaves nothing behind.
  expect_error([&] { io::save_safetensors((dir / "no" / "x.safetensors").string(), {}); },
               {"x.safetensors"});
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(bad_tensors_and_metadata_are_refused_on_save) {
  const fs::path path = temp("bad_save.safetensors");
  expect_error(
      [&] {
        io::save_safetensors(path, {{"u", Tensor()}});
      },
      {"save_safetensors", "bad_save", "'u' is undefined"});
  expect_error(
      [&] {
        io::save_safetensors(path, {{"__metadata__", ones({1})}});
      },
      {"save_safetensors", "reserved"});
  expect_error(
      [&] {
        io::save_safetensors(path, {}, {{"k", std::string("\xff\xfe", 2)}});
      },
      {"save_safetensors", "UTF-8"});
  BOOST_CHECK(!fs::exists(path));
}

BOOST_AUTO_TEST_CASE(offsets_tile_the_data_in_any_header_order) {
  // Entries in any order, empty tensors at the start, between and at the end: a valid tiling.
  const std::string header = R"({"z":{"dtype":"F32","shape":[0],"data_offsets":[8,8]},)"
                             R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                             R"("e":{"dtype":"I64","shape":[0,3],"data_offsets":[0,0]},)"
                             R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                             R"("m":{"dtype":"BOOL","shape":[0],"data_offsets":[4,4]}})";
  const float ab[2] = {1.5f, -2.0f};
  auto f = io::from_safetensors_bytes(
      file_bytes(header, std::string(reinterpret_cast<const char*>(ab), 8)));
  BOOST_TEST(f.tensors.size() == 5u);
  expect_values(f.tensors.at("a"), {1}, {1.5}, 0);
  expect_values(f.tensors.at("b"), {1}, {-2.0}, 0);
  BOOST_TEST(f.tensors.at("e").shape() == (Shape{0, 3}), boost::test_tools::per_element());
  // An empty tensor inside another one's bytes is an overlap.
  expect_error(
      [&] {
        io::from_safetensors_bytes(
            file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                       std::string(8, '\0')),
            "mem");
      },
      {"'mem'", "tensors 'a' [0, 8) and 'e' [4, 4) overlap"});
  // No tensors at all: the data section must be empty.
  BOOST_TEST(io::from_safetensors_bytes(file_bytes("{}", "")).tensors.empty());
  expect_error([&] { io::from_safetensors_bytes(file_bytes("{}", "xyz"), "mem"); },
               {"'mem'", "bytes [0, 3)", "belong to no tensor", "in a file without tensors"});
}

BOOST_AUTO_TEST_CASE(broken_files_throw_naming_the_file) {
  const fs::path path = temp("broken.safetensors");
  const std::string p = path.string();
  expect_error([&] { io::load_safetensors(temp("does_not_exist").string()); },
               {"load_safetensors", "does_not_exist", "No such file"});
  expect_error([&] { io::load_safetensors(fs::temp_directory_path().string()); },
               {"load_safetensors", "folder"});

  spit(path, "abc");
  expect_error([&] { io::load_safetensors(p); }, {p, "truncated", "3 bytes"});

  spit(path, le64(1000) + "{}");
  expect_error([&] { io::load_safetensors(p); }, {p, "header length 1000", "beyond"});

  spit(path, file_bytes("{\"a\": [1, 2", ""));
  expect_error([&] { io::load_safetensors(p); }, {p, "bad JSON"});

  spit(path, file_bytes("[1, 2]", ""));
  expect_error([&] { io::load_safetensors(p); }, {p, "JSON object"});

  spit(path, file_bytes(R"({"h": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}})",
                        std::string(4, '\0')));
  expect_error([&] { io::load_safetensors(p); }, {p, "'h'", "unknown dtype", "F16"});

  spit(path, file_bytes(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})",
                        std::string(8, '\0')));  // the data section was cut short
  expect_error([&] { io::load_safetensors(p); }, {p, "'w'", "out of range", "8 bytes"});

  spit(path, file_bytes(R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})",
                        std::string(8, '\0')));
  expect_error([&] { io::load_safetensors(p); }, {p, "'w'", "needs 12"});

  spit(path, file_bytes(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})",
                        std::string(8, '\0')));
  expect_error([&] { io::load_safetensors(p); }, {p, "out of range"});

  spit(path, file_bytes(R"({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})",
                        std::string(8, '\0')));
  expect_error([&] { io::load_safetensors(p); }, {p, "non-negative"});

  spit(path, file_bytes(R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 4],
                                  "data_offsets": [0, 8]}})",
                        std::string(8, '\0')));
  expect_error([&] { io::load_safetensors(p); }, {p, "'w'"});

  spit(path, file_bytes(R"({"w": {"dtype": "F32", "shape": [2]}})", std::string(8, '\0')));
  expect_error([&] { io::load_safetensors(p); }, {p, "data_offsets"});

  spit(path, file_bytes(R"({"__metadata__": {"epoch": 3}})", ""));
  expect_error([&] { io::load_safetensors(p); }, {p, "metadata 'epoch'", "string"});
  fs::remove(path);
}

BOOST_AUTO_TEST_SUITE_END()
