// TextDataset and Vocabulary on small corpora written to a temporary folder.
#include "xgrad/data/text.hpp"

#include <fstream>

#include "data_test_util.hpp"
#include "test_util.hpp"
#include "xgrad/random.hpp"

using namespace xgrad;
using namespace xgrad::testing;
using xgrad::data::Split;
using xgrad::data::TextDataset;
using xgrad::data::Vocabulary;

namespace {
void write(const std::filesystem::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary);
  out << s;
}
std::vector<std::int64_t> ids(const Tensor& t) {
  const Tensor c = t.contiguous();
  return {c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + c.numel()};
}
}  // namespace

BOOST_AUTO_TEST_SUITE(text_dataset)

BOOST_AUTO_TEST_CASE(vocabulary_is_the_sorted_distinct_bytes) {
  const Vocabulary v = Vocabulary::from_text("hello, world\n");
  BOOST_TEST(v.size() == 10);  // \n ' ' , d e h l o r w
  BOOST_TEST(v.to_string() == "0a202c6465686c6f7277");
  BOOST_TEST(ids(v.encode("hold")) == (std::vector<std::int64_t>{5, 7, 6, 3}),
             boost::test_tools::per_element());
  BOOST_TEST(v.decode(v.encode("world, hello\n")) == "world, hello\n");
  BOOST_TEST((Vocabulary::from_string(v.to_string()) == v));
  BOOST_TEST((Vocabulary::from_string("0A20") == Vocabulary::from_text(" \n")));
  expect_error([&] { v.encode("help"); }, {"byte 112", "position 3", "10 bytes"});
  expect_error([&] { v.decode(std::vector<std::int64_t>{10}); }, {"token id 10", "[0, 10)"});
  expect_error([] { Vocabulary::from_string("0a2"); }, {"odd length 3"});
  expect_error([] { Vocabulary::from_string("0a2x"); }, {"'x'", "position 3"});
  expect_error([] { Vocabulary::from_string("200a"); }, {"strictly increasing"});
  expect_error([] { Vocabulary::from_text(""); }, {"empty"});
}

BOOST_AUTO_TEST_CASE(folder_is_read_in_path_order_skipping_binary_files_and_duplicate_links) {
  TempDir dir;
  write(dir / "b", "bbb\n");
  write(dir / "a", "aa\n");
  write(dir / "a.dat", std::string("\0\1\2", 3));
  std::filesystem::create_symlink(dir / "a", dir / "a.u8");
  std::filesystem::create_directories(dir / "sub");
  write(dir / "sub" / "c", "c\n");
  BOOST_TEST(data::read_text(dir.path()) == "aa\nbbb\nc\n");
  BOOST_TEST(data::read_text(dir / "b") == "bbb\n");
  expect_error([&] { data::read_text(dir / "missing"); }, {"does not exist"});
}

BOOST_AUTO_TEST_CASE(split_and_blocks_are_contiguous_shifted_and_seeded) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += static_cast<char>('a' + i % 26);
  const TextDataset ds = TextDataset::from_text(text, 0.1);
  BOOST_TEST(ds.vocab().size() == 26);
  BOOST_TEST(ds.size(Split::train) == 90);
  BOOST_TEST(ds.size(Split::test) == 10);
  BOOST_TEST(ds.vocab().decode(ds.tokens(Split::test)) == text.substr(90));

  const std::vector<std::int64_t> offsets = {0, 7, 81};
  auto b = ds.batch_at(Split::train, offsets, 8);
  BOOST_TEST(b.inputs.shape() == (Shape{3, 8}));
  BOOST_TEST(ds.vocab().decode(b.inputs[1]) == text.substr(7, 8));
  BOOST_TEST(ds.vocab().decode(b.labels[1]) == text.substr(8, 8));
  BOOST_TEST(ds.vocab().decode(b.labels[2]) == text.substr(82, 8));
  expect_error([&] { ds.batch_at(Split::train, std::vector<std::int64_t>{82}, 8); },
               {"offset 82", "[0, 81]"});
  expect_error([&] { ds.sample_batch(Split::test, 2, 10); }, {"block size 10", "10 characters"});

  manual_seed(3);
  auto s1 = ds.sample_batch(Split::train, 16, 8);
  manual_seed(3);
  auto s2 = ds.sample_batch(Split::train, 16, 8);
  BOOST_TEST(ids(s1.inputs) == ids(s2.inputs), boost::test_tools::per_element());
  // Every row is a contiguous block of the training text, labels one character later.
  for (std::int64_t r = 0; r < 16; ++r) {
    const std::string in = ds.vocab().decode(s1.inputs[r]);
    const std::string lab = ds.vocab().decode(s1.labels[r]);
    const auto at = text.substr(0, 90).find(in + lab.back());
    BOOST_TEST(at != std::string::npos);
    BOOST_TEST(lab.substr(0, 7) == in.substr(1));
  }
  // The offsets differ: not every row starts with the same character.
  bool differ = false;
  for (std::int64_t r = 1; r < 16; ++r) differ |= ids(s1.inputs[r])[0] != ids(s1.inputs[0])[0];
  BOOST_TEST(differ);
}

BOOST_AUTO_TEST_CASE(a_given_vocabulary_must_cover_the_corpus) {
  TempDir dir;
  write(dir / "t", "abcabcabcabcabcabcabcabc");
  const TextDataset ds(dir / "t", Vocabulary::from_text("abcd"), 0.25);
  BOOST_TEST(ds.vocab().size() == 4);
  BOOST_TEST(ds.size(Split::train) == 18);
  expect_error([&] { TextDataset(dir / "t", Vocabulary::from_text("ab"), 0.25); },
               {"byte 99", "position 2"});
  expect_error([] { TextDataset::from_text("abc", 0.5); }, {"too few"});
  expect_error([] { TextDataset::from_text("abcdef", 1.0); }, {"val_fraction"});
}

BOOST_AUTO_TEST_CASE(fortunes_corpus_when_installed) {
  if (!std::filesystem::exists(data::kDefaultTextCorpus)) return;
  const TextDataset ds(data::kDefaultTextCorpus);
  const std::int64_t n = ds.size(Split::train) + ds.size(Split::test);
  BOOST_TEST(n > 2'000'000);  // 2.6 MB in 43 files, without the .dat and .u8 duplicates
  BOOST_TEST(n < 3'000'000);
  BOOST_TEST(ds.vocab().size() < 256);
  BOOST_TEST(ds.vocab().id('e') >= 0);
}

BOOST_AUTO_TEST_SUITE_END()
