// io::write_file_atomically: the new content replaces the old in one rename with no leftovers,
// a failure leaves the old file as it was, and devices, FIFOs and symbolic links are written
// through rather than replaced (`xgrad-train --log /dev/null` must not replace /dev/null).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "process_util.hpp"
#include "test_util.hpp"
#include "xgrad/io/atomic_file.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::slurp;
namespace fs = std::filesystem;

using xgrad::testing::list_dir;
using xgrad::testing::TempDir;

BOOST_AUTO_TEST_SUITE(atomic_file)

BOOST_AUTO_TEST_CASE(replaces_the_content_without_leftovers) {
  TempDir t;
  const fs::path dir = t.path;
  const fs::path f = dir / "log.csv";
  io::write_file_atomically(f, "first\n");
  BOOST_TEST(slurp(f) == "first\n");
  io::write_file_atomically(f, "second\n");
  BOOST_TEST(slurp(f) == "second\n");
  BOOST_TEST((list_dir(dir) == std::vector<std::string>{"log.csv"}));
  BOOST_TEST(static_cast<unsigned>(fs::status(f).permissions() & fs::perms::all) == 0644u);
}

BOOST_AUTO_TEST_CASE(errors_name_the_path_and_leave_nothing) {
  TempDir t;
  const fs::path dir = t.path;
  expect_error([&] { io::write_file_atomically(dir / "missing" / "a.txt", "x"); },
               {"write_file_atomically", "missing/a.txt"});
  expect_error([&] { io::write_file_atomically(dir, "x"); },
               {"write_file_atomically", "is a folder"});
  BOOST_TEST(list_dir(dir).empty());
  BOOST_TEST(fs::is_directory(dir));
}

BOOST_AUTO_TEST_CASE(a_device_stays_a_device) {
  // /dev/null exists on every Linux machine; the write goes into it and it stays a device.
  io::write_file_atomically("/dev/null", "discarded\n");
  struct stat st {};
  BOOST_REQUIRE(::stat("/dev/null", &st) == 0);
  BOOST_TEST(S_ISCHR(st.st_mode));
}

BOOST_AUTO_TEST_CASE(a_fifo_gets_the_bytes_and_stays_a_fifo) {
  TempDir t;
  const fs::path dir = t.path;
  const fs::path fifo = dir / "pipe";
  BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::string got;
  std::thread reader([&] { got = slurp(fifo); });
  io::write_file_atomically(fifo, "through the pipe\n");
  reader.join();
  BOOST_TEST(got == "through the pipe\n");
  BOOST_TEST(fs::is_fifo(fifo));
  BOOST_TEST((list_dir(dir) == std::vector<std::string>{"pipe"}));
}

BOOST_AUTO_TEST_CASE(a_symbolic_link_keeps_pointing_at_its_new_content) {
  TempDir t;
  const fs::path dir = t.path;
  fs::create_directory(dir / "real");
  const fs::path target = dir / "real" / "curve.csv", link = dir / "curve.csv";
  io::write_file_atomically(target, "old\n");
  fs::create_symlink(target, link);
  io::write_file_atomically(link, "new\n");
  BOOST_TEST(fs::is_symlink(link));
  BOOST_TEST(slurp(target) == "new\n");
  BOOST_TEST(slurp(link) == "new\n");
  BOOST_TEST((list_dir(dir) == std::vector<std::string>{"curve.csv", "real"}));
}

BOOST_AUTO_TEST_CASE(stale_temporaries_of_the_path_are_removed_and_nothing_else) {
  TempDir t;
  const fs::path dir = t.path;
  const fs::path f = dir / "ckpt.safetensors";
  // Left by killed writes of f: removed. Of another path, of other patterns, a folder of the
  // pattern, and one a live writer holds (flock): kept.
  const std::vector<std::string> stale = {"ckpt.safetensors.tmp.a1B2c3",
                                          "ckpt.safetensors.tmp.XXXXXX"};
  const std::vector<std::string> kept = {"ckpt.safetensors.tmp.a1B2c",
                                         "ckpt.safetensors.tmp.a1B2c34",
                                         "ckpt.safetensors.tmp.a1-2c3",
                                         "ckpt.safetensors.tmp.live00",
                                         "ckpt.safetensors.tmp.subdir",
                                         "ckpt.safetensorz.tmp.a1B2c3",
                                         "other.tmp.a1B2c3",
                                         "xckpt.safetensors.tmp.a1B2c3"};
  for (const auto& n : stale) std::ofstream(dir / n) << "stale";
  for (const auto& n : kept)
    if (n != "ckpt.safetensors.tmp.subdir") std::ofstream(dir / n) << "keep";
  fs::create_directory(dir / "ckpt.safetensors.tmp.subdir");
  const int live = ::open((dir / "ckpt.safetensors.tmp.live00").c_str(), O_RDWR);
  BOOST_REQUIRE(live >= 0);
  BOOST_REQUIRE(::flock(live, LOCK_EX | LOCK_NB) == 0);

  io::write_file_atomically(f, "new\n");
  BOOST_TEST(slurp(f) == "new\n");
  std::vector<std::string> want = kept;
  want.push_back("ckpt.safetensors");
  std::sort(want.begin(), want.end());
  BOOST_TEST(list_dir(dir) == want, boost::test_tools::per_element());
  // Once its writer is gone (its lock with it), the next write removes it.
  ::close(live);
  io::write_file_atomically(f, "newer\n");
  BOOST_TEST(!fs::exists(dir / "ckpt.safetensors.tmp.live00"));
  BOOST_TEST(fs::exists(dir / "ckpt.safetensors.tmp.a1B2c"));
}

BOOST_AUTO_TEST_SUITE_END()
