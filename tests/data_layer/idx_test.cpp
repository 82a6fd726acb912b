// The IDX reader and writer on small synthetic files, plain and gzip-compressed.
#include "xgrad/data/idx.hpp"

#include "data_test_util.hpp"
#include "test_util.hpp"

using namespace xgrad;
using namespace xgrad::testing;
using xgrad::data::IdxArray;
using xgrad::data::read_idx;
using xgrad::data::write_idx;

BOOST_AUTO_TEST_SUITE(idx)

BOOST_AUTO_TEST_CASE(reads_synthetic_images_and_labels_plain_and_gz) {
  TempDir dir;
  const auto pixels = pattern(3 * 2 * 4);
  const auto labels = std::vector<std::uint8_t>{7, 0, 9};
  for (bool gz : {false, true}) {
    const std::string ext = gz ? ".gz" : "";
    write_bytes(dir / ("images" + ext), idx_bytes(0x00000803, {3, 2, 4}, pixels), gz);
    write_bytes(dir / ("labels" + ext), idx_bytes(0x00000801, {3}, labels), gz);

    IdxArray im = read_idx(dir / ("images" + ext), 3);
    BOOST_TEST(im.dims == (std::vector<std::int64_t>{3, 2, 4}), boost::test_tools::per_element());
    BOOST_TEST(im.data == pixels, boost::test_tools::per_element());
    IdxArray lb = read_idx(dir / ("labels" + ext), 1);
    BOOST_TEST(lb.dims == (std::vector<std::int64_t>{3}), boost::test_tools::per_element());
    BOOST_TEST(lb.data == labels, boost::test_tools::per_element());
    // Without an expected rank any uint8 rank is accepted.
    BOOST_TEST(read_idx(dir / ("images" + ext)).dims.size() == 3u);
  }
}

BOOST_AUTO_TEST_CASE(reads_empty_and_higher_rank_files) {
  TempDir dir;
  write_bytes(dir / "empty", idx_bytes(0x00000803, {0, 28, 28}, {}), false);
  IdxArray e = read_idx(dir / "empty", 3);
  BOOST_TEST(e.dims == (std::vector<std::int64_t>{0, 28, 28}), boost::test_tools::per_element());
  BOOST_TEST(e.data.empty());
  write_bytes(dir / "r4.gz", idx_bytes(0x00000804, {2, 1, 3, 2}, pattern(12, 5)), true);
  IdxArray r4 = read_idx(dir / "r4.gz");
  BOOST_TEST(r4.dims == (std::vector<std::int64_t>{2, 1, 3, 2}), boost::test_tools::per_element());
  BOOST_TEST(r4.data == pattern(12, 5), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(write_idx_round_trips_plain_and_gz) {
  TempDir dir;
  IdxArray a{{4, 3, 5}, pattern(60, 11)};
  write_idx(dir / "a", a);
  write_idx(dir / "a.gz", a);
  // The plain file is exactly the IDX bytes; the .gz file is gzip (magic 1f 8b).
  BOOST_TEST(read_bytes(dir / "a") == idx_bytes(0x00000803, {4, 3, 5}, a.data),
             boost::test_tools::per_element());
  const auto gz = read_bytes(dir / "a.gz");
  BOOST_REQUIRE_GE(gz.size(), 2u);
  BOOST_TEST(gz[0] == 0x1f);
  BOOST_TEST(gz[1] == 0x8b);
  for (const char* name : {"a", "a.gz"}) {
    IdxArray b = read_idx(dir / name, 3);
    BOOST_TEST(b.dims == a.dims, boost::test_tools::per_element());
    BOOST_TEST(b.data == a.data, boost::test_tools::per_element());
  }
  expect_error(
      [&] {
        write_idx(dir / "bad", IdxArray{{2, 3}, pattern(5)});
      },
      {"write_idx", "hold 6 elements, but data has 5"});
  expect_error([&] { write_idx(dir / "bad", IdxArray{{}, {}}); }, {"write_idx", "rank"});
}

BOOST_AUTO_TEST_CASE(rejects_missing_file) {
  TempDir dir;
  const auto missing = (dir / "no-such-file.gz").string();
  expect_error([&] { read_idx(missing); }, {"read_idx", "cannot open", missing, "no such file"});
  expect_error([&] { read_idx(dir.path()); }, {"read_idx", "cannot open", "directory"});
}

BOOST_AUTO_TEST_CASE(rejects_wrong_magic_number) {
  TempDir dir;
  for (bool gz : {false, true}) {
    const auto junk = (dir / (gz ? "junk.gz" : "junk")).string();
    write_bytes(junk, idx_bytes(0x12345678, {3, 2, 2}, pattern(12)), gz);
    expect_error([&] { read_idx(junk, 3); }, {"read_idx", junk, "wrong magic number",
                                              "expected 0x00000803", "found 0x12345678"});
    expect_error([&] { read_idx(junk); },
                 {"wrong magic number", "expected 0x000008RR", "found 0x12345678"});

    // A labels file where images are expected: right type, wrong rank.
    const auto labels = (dir / (gz ? "labels.gz" : "labels")).string();
    write_bytes(labels, idx_bytes(0x00000801, {3}, {1, 2, 3}), gz);
    expect_error([&] { read_idx(labels, 3); }, {labels, "wrong magic number", "expected 0x00000803",
                                                "found 0x00000801", "rank 1 instead of 3"});
  }
  // An unknown type byte and a rank of 0 are wrong magic numbers too.
  write_bytes(dir / "t", idx_bytes(0x00000A01, {1}, {0}), false);
  expect_error([&] { read_idx(dir / "t"); }, {"wrong magic number", "found 0x00000A01"});
  write_bytes(dir / "r0", idx_bytes(0x00000800, {}, {0}), false);
  expect_error([&] { read_idx(dir / "r0"); }, {"wrong magic number", "found 0x00000800"});
}

BOOST_AUTO_TEST_CASE(rejects_unsupported_element_type) {
  TempDir dir;
  const auto f = (dir / "floats.gz").string();
  write_bytes(f, idx_bytes(0x00000D02, {2, 2}, pattern(16)), true);
  expect_error([&] { read_idx(f, 2); },
               {"read_idx", f, "unsupported element type 0x0D (float32)", "only 0x08 (uint8)"});
  write_bytes(dir / "i", idx_bytes(0x00000C01, {1}, pattern(4)), false);
  expect_error([&] { read_idx(dir / "i"); }, {"unsupported element type 0x0C (int32)"});
}

BOOST_AUTO_TEST_CASE(rejects_truncated_file) {
  TempDir dir;
  for (bool gz : {false, true}) {
    const std::string ext = gz ? ".gz" : "";
    // Data cut short: header 16 bytes + 24 data bytes expected, 16 + 20 present.
    const auto data = (dir / ("data" + ext)).string();
    write_bytes(data, idx_bytes(0x00000803, {2, 3, 4}, pattern(20)), gz);
    expect_error([&] { read_idx(data, 3); },
                 {"read_idx", data, "is truncated", "expected 40 bytes", "got 36", "[2,3,4]"});
    // Header cut inside the dimensions.
    auto bytes = idx_bytes(0x00000803, {2, 3, 4}, {});
    bytes.resize(10);
    const auto head = (dir / ("head" + ext)).string();
    write_bytes(head, bytes, gz);
    expect_error([&] { read_idx(head, 3); },
                 {head, "is truncated", "expected 16 bytes", "got 10", "header"});
    // Not even a magic number (an empty file).
    const auto empty = (dir / ("empty" + ext)).string();
    write_bytes(empty, {}, gz);
    expect_error([&] { read_idx(empty); },
                 {empty, "is truncated", "expected 4 bytes", "got 0", "magic number"});
  }
}

BOOST_AUTO_TEST_CASE(rejects_cut_gzip_stream) {
  // A download cut short: the .gz file itself ends in the middle of the compressed stream.
  TempDir dir;
  const auto full = dir / "full.gz";
  write_idx(full, IdxArray{{50, 10, 10}, pattern(5000, 3)});
  auto bytes = read_bytes(full);
  bytes.resize(bytes.size() / 2);
  const auto cut = (dir / "cut.gz").string();
  write_bytes(cut, bytes, false);
  expect_error([&] { read_idx(cut, 3); },
               {"read_idx", cut, "is truncated", "expected 5016 bytes", "gzip stream"});
  // Only the 8-byte trailer (CRC-32 and length) missing: every data byte is there.
  bytes = read_bytes(full);
  bytes.resize(bytes.size() - 8);
  write_bytes(cut, bytes, false);
  expect_error([&] { read_idx(cut, 3); },
               {cut, "is truncated", "all 5016 bytes are there", "ends before its checksum"});
}

BOOST_AUTO_TEST_CASE(rejects_corrupt_gzip_data) {
  TempDir dir;
  const auto f = (dir / "bad-crc.gz").string();
  write_idx(f, IdxArray{{4, 2, 2}, pattern(16)});
  auto bytes = read_bytes(f);
  bytes[bytes.size() - 6] ^= 0x01;  // flip a bit of the CRC-32
  write_bytes(f, bytes, false);
  expect_error([&] { read_idx(f, 3); },
               {"read_idx: cannot read '" + f + "': incorrect data check", "corrupt gzip data"});
}

BOOST_AUTO_TEST_CASE(rejects_trailing_bytes) {
  TempDir dir;
  const auto f = (dir / "long").string();
  write_bytes(f, idx_bytes(0x00000801, {3}, {1, 2, 3, 4, 5}), false);
  expect_error([&] { read_idx(f, 1); }, {f, "2 trailing bytes", "after the 11 bytes"});
}

BOOST_AUTO_TEST_CASE(rejects_negative_dimension) {
  TempDir dir;
  write_bytes(dir / "neg", idx_bytes(0x00000801, {-5}, {}), false);
  expect_error([&] { read_idx(dir / "neg", 1); }, {"negative dimension -5"});
}

BOOST_AUTO_TEST_SUITE_END()
