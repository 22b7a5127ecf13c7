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

#: A truncated JPEG is read only if at most this share of its picture is missing (the
#: band that the decoder paints grey): losing a few bytes is harmless, losing a third
#: of a cover leaves what may be a fit for another cover of the same series.
MAX_MISSING_SHARE = 0.01

#: Images that declare more pixels than this are refused before they are decoded. It is
#: above any phone camera (a 108-megapixel sensor stays under it), far below what a
#: small, deliberately crafted file can make a decoder allocate, and below Pillow's own
#: limit, so that this check is the one that speaks.
MAX_IMAGE_PIXELS = 150_000_000

# --- Features ------------------------------------------------------------------------

#: Keypoints kept per photo. A photo holds the cover and its surroundings (desk clutter,
#: other books, hands), and detectors favour the sharpest texture, often not the cover;
#: going from 1,500 to 3,000 raised top-1 on the benchmark photos by several points.
PHOTO_FEATURES = 3000

#: Keypoints kept per catalogue cover; with the photo's budget this bounds the cost of
#: matching one candidate and the size of the index.
COVER_FEATURES = 800

# --- Vocabulary ----------------------------------------------------------------------

#: The vocabulary is a two-level tree of k-means centres (a vocabulary tree): up to
#: ``branching`` centres at the top and up to ``branching`` children under each, so up
#: to ``branching ** 2`` visual words. A descriptor is compared with the top centres and
#: then with the children of the nearest one only, which keeps quantising cheap however
#: large the vocabulary grows. Unless given, the branching is chosen from the number of
#: catalogue descriptors so that each word gets about this many of them...
DESCRIPTORS_PER_WORD = 20

#: ...within these bounds. On the 1,702-cover benchmark (1.4 million ORB descriptors)
#: 256 branches (65,536 words) gave 96 % top-1 where 128 branches gave 92 %.
MIN_BRANCHING = 16
MAX_BRANCHING = 256

# --- Retrieval -----------------------------------------------------------------------

#: Covers, best first by TF-IDF score, that are checked for each photo with the cheap
#: word-based homography of :func:`cvmatch.verification.word_inliers`. Retrieval by
#: words alone often ranks the right cover below look-alikes; this check costs well
#: under a millisecond a cover, so a long shortlist is affordable.
CANDIDATES = 50

#: Of those, covers taken in turn from the best by word inliers and the best by TF-IDF
#: score get the full, ratio-tested verification (a few milliseconds each): this many
#: always, to find the runner-up that the confidence needs...
VERIFIED = 8

#: ...and, while none has been verified yet, the rest of the shortlist: hard photos
#: (blur, glare, a cut-off file) and small catalogues, whose small vocabularies make
#: both orderings noisy, often have their cover well down both lists.
MAX_VERIFIED = CANDIDATES

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

#: The check of :func:`cvmatch.verification.explained_share` cuts the cover into this
#: many cells a side. Series covers share a band about a quarter to a third of the
#: cover high; the cells must be finer than that for the rest to be seen. With 4 cells
#: a side the wrong and the right fits of the benchmark overlapped; with 8, cells get
#: too few photo keypoints to judge.
EXPLAINED_GRID = 6

#: A cell without inliers contradicts the fit only where the cover has at least this
#: many keypoints (it has a pattern to show)...
EXPLAINED_MIN_COVER_KEYPOINTS = 3

#: ...and the photo at least this many (it does show a pattern there, which the cover
#: failed to explain). Glare and blur leave few photo keypoints and so no contradiction.
EXPLAINED_MIN_PHOTO_KEYPOINTS = 12

#: Fits whose inliers explain a smaller share of the cells than this are rejected. On
#: the benchmark, covers of the same series as the photo's book (shared Blu-ray
#: banners, an author's name in the same lettering) and a back cover repeating the
#: title scored 0.18-0.43; of 205 right fits, two scored below 0.45 (0.36 and 0.43,
#: both on heavily blurred or glared photos).
MIN_EXPLAINED_SHARE = 0.45

# --- Decision ------------------------------------------------------------------------

#: A photo with fewer keypoints than this cannot be matched reliably: it is reported as
#: no match "too few features", and a cover with fewer is left out of the index.
MIN_FEATURES = 25

#: Verified inliers the best book needs before it can be named at all. On the
#: benchmark, wrong covers reached up to 16 inliers by chance on cluttered photos
#: (romance thumbnails against DVD photos), while every right cover had at least 30.
MIN_INLIERS = 20

#: Inliers at which the evidence is considered strong; the confidence formula in
#: :mod:`cvmatch.matcher` reaches 0.63 of its maximum here.
STRONG_INLIERS = 40

#: Confidence below which :meth:`cvmatch.CoverIndex.match` reports no match.
MIN_CONFIDENCE = 0.3
