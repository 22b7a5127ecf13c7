"""Every number that tunes the recognition method, named and explained once.

The values were chosen on the benchmark in ``benchmarks/`` (real phone photos of covers
against a catalogue of 1,702 covers); change one only with that benchmark in hand.
"""

# --- Image loading -------------------------------------------------------------------

#: Longest side, in pixels, that a photo is reduced to before features are found. Phone
#: photos are 12-48 megapixels, but a cover seen at 1,000 px already gives more stable
#: keypoints than the detector can use, and every extra pixel costs query time.
PHOTO_MAX_SIDE = 1024

#: Longest side that a catalogue cover is reduced to. Covers fill the whole image, so
#: they need fewer pixels than a photo in which the cover is only part of the scene.
COVER_MAX_SIDE = 800

#: Shortest side that a small catalogue cover is enlarged to. Thumbnails of 180 px give
#: too few keypoints at their native size; enlarging them lets the finer pyramid levels
#: of the detector fire on title lettering.
COVER_MIN_SIDE = 400

#: Catalogue images smaller than this on either side are left out of the index: what
#: enlarging them would show is blur, and features found in blur match nothing real.
COVER_MIN_NATIVE_SIDE = 100

#: Images that declare more pixels than this are refused before they are decoded. It is
#: above any phone camera (a 108-megapixel sensor stays under it), far below what a
#: small, deliberately crafted file can make a decoder allocate, and below Pillow's own
#: limit, so that this check is the one that speaks.
MAX_IMAGE_PIXELS = 150_000_000

# --- Features ------------------------------------------------------------------------

#: Keypoints kept per photo. A photo holds the cover and its surroundings, so it needs
#: more than a cover does for enough of them to land on the cover itself.
PHOTO_FEATURES = 1500

#: Keypoints kept per catalogue cover; with the photo's budget this bounds the cost of
#: matching one candidate and the size of the index.
COVER_FEATURES = 800

# --- Vocabulary ----------------------------------------------------------------------

#: The vocabulary is a two-level tree of k-means centres (a vocabulary tree): this many
#: centres at the top, and up to this many children under each, so a vocabulary holds
#: up to ``VOCABULARY_BRANCHING ** 2`` visual words. A descriptor is compared with the
#: top centres and then with the children of the nearest one only, which keeps
#: quantising cheap however large the vocabulary grows. 64 gives 4,096 words, which
#: suits catalogues of hundreds to tens of thousands of covers; larger catalogues
#: want more words (``--branching``).
VOCABULARY_BRANCHING = 64

#: Catalogue descriptors sampled to train the vocabulary: about 40 per word is enough
#: for k-means to place every centre among real descriptors; more only costs time.
VOCABULARY_SAMPLE_PER_WORD = 40

#: Descriptors quantised per block, bounding the memory of the distance matrix.
QUANTISE_BLOCK = 4096

# --- Retrieval -----------------------------------------------------------------------

#: Covers, best first by TF-IDF score, that are checked for each photo with the cheap
#: word-based homography of :func:`cvmatch.verification.word_inliers`. Retrieval by
#: words alone often ranks the right cover below look-alikes; this check costs well
#: under a millisecond a cover, so a long shortlist is affordable.
CANDIDATES = 50

#: Of those, the covers with the most word inliers that get the full, ratio-tested
#: verification, which costs a few milliseconds each.
VERIFIED = 6

# --- Verification --------------------------------------------------------------------

#: Lowe's ratio test: a photo descriptor's nearest cover descriptor is kept only if it
#: is clearly nearer than the second nearest. Lower keeps fewer, surer correspondences.
RATIO_TEST = 0.8

#: Largest distance, in working-size photo pixels, between where the homography puts a
#: cover keypoint and where its match lies, for the pair to count as an inlier.
RANSAC_REPROJECTION_ERROR = 5.0

#: RANSAC iterations and confidence. The fit is OpenCV's USAC with MAGSAC++ scoring,
#: whose early rejection of hopeless models makes a wrong candidate cost well under a
#: millisecond where classic RANSAC would run all its iterations.
RANSAC_MAX_ITERATIONS = 2000
RANSAC_CONFIDENCE = 0.995

#: The cover's outline in the photo must cover at least this share of the photo...
MIN_COVER_AREA = 0.005

#: ...and its opposite sides may differ in length by at most this factor. A cover seen
#: even at a steep angle stays well inside it; a homography fitted to a few wrong
#: correspondences usually folds or stretches the outline far beyond it.
MAX_SIDE_RATIO = 6.0

#: Inliers must span at least this share of the cover's area (their convex hull);
#: correspondences bunched on one logo or one word of a title prove little.
MIN_INLIER_SPREAD = 0.02

# --- Decision ------------------------------------------------------------------------

#: A photo with fewer keypoints than this cannot be matched reliably: it is reported as
#: no match "too few features", and a cover with fewer is left out of the index.
MIN_FEATURES = 25

#: Verified inliers the best book needs before it can be named at all. Wrong covers
#: reach 6-10 inliers by chance on cluttered photos; a real cover almost always has
#: more than 20 even under glare and steep angles.
MIN_INLIERS = 15

#: Inliers at which the evidence is considered strong; the confidence formula in
#: :mod:`cvmatch.matcher` reaches 0.63 of its maximum here.
STRONG_INLIERS = 40

#: Confidence below which :meth:`cvmatch.CoverIndex.match` reports no match.
MIN_CONFIDENCE = 0.3

#: Covers in a series share their design: the author's name in the same lettering at
#: the same place, the publisher's banner. A photo of one can fit another with many
#: inliers, all in that shared band. So the cover is cut into a grid of this many rows
#: and columns, and the inliers must reach...
COVERAGE_GRID = 4

#: ...at least this share of the cells that hold any of the cover's keypoints.
MIN_COVERAGE = 0.0
