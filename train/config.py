"""Training options: the one home of their defaults, types and help (the CLI reads them from here)."""
from __future__ import annotations

from dataclasses import dataclass, field

from edgesight.runtime.stream import DEFAULT_LOCATORS


@dataclass(frozen=True)
class TrainConfig:
    """Every training option, its default and its meaning (the CLI is generated from this)."""

    data: str | None = field(default=None, metadata={"help": "the task's data: gtsrb, a folder of the official archives (or what they "
                                                             "extract to); cifar10, an image-folder tree, .zip or .tgz. Required for "
                                                             "a new run, taken from the run with --resume"})
    task: str = field(default="gtsrb", metadata={"help": "gtsrb, cifar10, or a name of your own for an image-folder dataset given with --data"})
    run_dir: str | None = field(default=None, metadata={"help": "output folder for the model, checkpoints and reports (default: runs/TASK)"})
    model: str = field(default="cnn-base", metadata={"help": "architecture from the model zoo (see --list-models)"})
    input_size: int | None = field(default=None, metadata={"help": "input height and width in pixels (default: the task's, 32)"})
    resize: str | None = field(default=None, metadata={"help": "resize of a region to the input: area (best downscaling), "
                                                               "linear (about 5x faster at runtime), cubic (default: the task's, area)"})
    box_margin: float | None = field(default=None, metadata={"help": "share of a labelled box's width and height added on each side "
                                                                     "before cropping (0: the box alone; default: the task's, 0.1 "
                                                                     "for signs); the model file records it for the runtime"})
    skip_bad_images: bool = field(default=False, metadata={"help": "drop images that do not decode, naming each, instead of stopping"})
    background: str | None = field(default=None, metadata={"help": "road scenes (GTSDB layout: images and gt.txt) for a sign task: their "
                                                                    "background boxes train an extra 'not a sign' class and their signs "
                                                                    "join the training set; keep the scenes you evaluate on out of it"})
    background_locator: list[str] = field(default_factory=lambda: list(DEFAULT_LOCATORS), metadata={
        "help": "with --background, whose proposals the 'not a sign' class learns from: colour, diamonds, sign-locator, a "
                "locator file, or several: the locators the model will sit behind at runtime, whose mistakes it learns "
                "to reject (default: the runtime's default locators)"})
    init_from: str | None = field(default=None, metadata={"help": "start from the weights of a finished run folder of the same task, or "
                                                                   "of an fp32 model file `export` made (a shipped one by name, e.g. "
                                                                   "cifar10-fp32): its architecture, preprocessing and validation tracks "
                                                                   "are used, with a fresh schedule (--box-margin may "
                                                                   "reframe its crops)"})
    teacher: list[str] = field(default_factory=list, metadata={
        "help": "distil from finished run folders or fp32 model files of the same task and box margin (several: their averaged "
                "outputs): the student also learns the teachers' softened class ranking; a teacher of another input size "
                "reads each batch rescaled to its own"})
    distill_temperature: float = field(default=4.0, metadata={"help": "with --teacher, the softmax temperature of the teacher's and "
                                                                        "student's softened outputs"})
    distill_weight: float = field(default=0.7, metadata={"help": "with --teacher, the share of the loss that follows the teacher "
                                                                   "(the rest follows the true class)"})
    mixup: float = field(default=0.0, metadata={"help": "with --teacher and --distill-weight 1: blend each augmented image with "
                                                         "another of its batch (MixUp, share drawn from Beta(a, a) for this a) "
                                                         "and let the teacher say what the blend is (function matching); 0: off"})
    mirror_average: bool = field(default=False, metadata={
        "help": "the model reads each image and its mirror image and averages the two views' logits (test-time "
                "augmentation inside the graph): same parameters, twice the MACs and time. Only for tasks whose classes "
                "a mirror image keeps (objects, not signs). With --init-from, the source's weights gain it"})
    augmentation: str | None = field(default=None, metadata={
        "help": "training augmentation profile: signs, signs-cameras (signs, then darkened or over-exposed, blurred, noisy "
                "and JPEG-compressed, each by chance 0.35: train/augment.py, CameraConditions; gtsrb-locate fine-tuned "
                "with it lost 13 GTSRB test images and gained no road-scene sign under those conditions, "
                "docs/EXPERIMENTS.md), objects, objects-light "
                "(shifts and mirror images only) or objects-sharp (the same, shifted by whole pixels: no resampling blur); default: "
                "the task's (signs for sign tasks, which are never mirrored: a mirrored 'keep left' is 'keep right')"})
    epochs: int = field(default=35, metadata={"help": "training epochs; 0 with --init-from a model file makes a run folder "
                                                        "holding its weights as they are (for export, bench with its peers)"})
    batch_size: int = field(default=128, metadata={"help": "images per training step"})
    learning_rate: float = field(default=3e-3, metadata={"help": "peak learning rate (cosine decay after 1 warm-up epoch)"})
    weight_decay: float = field(default=1e-4, metadata={"help": "decoupled weight decay: each step shrinks weights by "
                                                                  "learning rate x this, outside the momentum"})
    # Classic SGD's L2 term passes through momentum 0.9 and so acts ten times stronger than the
    # same decoupled figure: the classic recipe's 5e-4 is --weight-decay 5e-3 here.
    optimizer: str = field(default="adamw", metadata={"help": "adamw, or sgd (Nesterov momentum 0.9: the classic CIFAR ResNet recipe, "
                                                                 "with --learning-rate 0.1 --weight-decay 5e-3)"})
    weight_ema: float = field(default=0.0, metadata={
        "help": "keep an exponential moving average of the weights with this momentum per step (Polyak averaging, e.g. "
                "0.999: about the last 1,000 steps), validate with it and finish with it; the batch-norm statistics are "
                "then refit to the averaged weights (see --bn-statistics), so each epoch's validation figure, taken "
                "with the raw weights' statistics, reads low until that refit. 0: off"})
    val_fraction: float = field(default=0.1, metadata={"help": "fraction of each class's tracks held out for validation"})
    bn_statistics: str | None = field(default=None, metadata={
        "help": "batch-norm statistics of the finished model: refit (re-estimated on about 10,000 unaugmented training "
                "images, kept only if validation accuracy does not fall) or keep (as training left them). Default: refit "
                "after training; keep with --epochs 0, which holds a file's weights as they are"})
    seed: int = field(default=0, metadata={"help": "seed for the split, initialization, shuffling and augmentation"})
    list_models: bool = field(default=False, metadata={"help": "print the model zoo with parameters and MACs at the task's input size, and exit"})
    resume: bool = field(default=False, metadata={"help": "continue the interrupted run in --run-dir from its last checkpoint"})


@dataclass(frozen=True)
class LocatorTrainConfig:
    """Every option of `edgesight train-locator`, its default and its meaning."""

    data: str | None = field(default=None, metadata={"help": "road scenes with ground truth (GTSDB layout: images and gt.txt, a folder "
                                                             "or .zip); keep the scenes you evaluate on out of it. Required for a new "
                                                             "run, taken from the run with --resume"})
    signs: str | None = field(default=None, metadata={"help": "GTSRB folder (official archives or what they extract to): its training "
                                                              "signs are pasted into the scenes; without it only the scenes' own signs teach"})
    run_dir: str | None = field(default=None, metadata={"help": "output folder (default: runs/sign-locator)"})
    width: int = field(default=48, metadata={"help": "channels of the network's body: more finds more, costs more per frame. "
                                                      "onnxruntime on AVX-512 works in blocks of 16 channels: 48 runs as fast "
                                                      "as 40 did (5.3 ms a frame) and 32 in 4.5 ms, but a width-32 locator "
                                                      "missed more large signs"})
    downscale: int = field(default=2, metadata={
        "help": "the frame is shrunk by this before the network (1-4): 3 has 44%% of the cells of 2, so 0.44x the "
                "network's multiply-adds, but a 24 px sign is 8 px there instead of 12. Trained by the shipped recipe "
                "at 3 (width 48, --crop-size 176), it found 110 of 126 held-out signs against 114, in 0.71x the time a frame; "
                "at width 64, 109 in 0.77x"})
    stride: int = field(default=4, metadata={"help": "frame pixels per output cell after the downscale (4 or 8): 8 has a quarter "
                                                      "of the cells and runs the network in less than half the time, but found "
                                                      "fewer signs in the one width-64 run tried"})
    context_stride: int | None = field(default=None, metadata={
        "help": "stride of the grid the dilated context layers run on (default: --stride). 8 with --stride 4 is an "
                "hourglass: the context runs on a quarter of the cells at --width channels, and its features return to "
                "the stride-4 heads through a skip from the stride-4 layer, at half the width. At width 64 the network "
                "took 0.58x the shipped width-48 locator's time on the AMD EPYC (7.7 against 13.2 ms a 1360x800 frame), "
                "but the one trained by the shipped recipe found 8 fewer of 126 held-out signs"})
    fine_width: int | None = field(default=None, metadata={
        "help": "with --context-stride 8: channels of the hourglass's stride-4 layer and heads (default: half of --width). "
                "The hourglass that lost signs had 32, narrower than the shipped locator's 48, as a width-32 locator "
                "that also lost signs. At 48 (--width 64) the network took 0.78x the shipped locator's time on the AMD "
                "EPYC; trained by the shipped recipe it found 110 of 126 held-out signs against 114, in 0.88x the time a frame"})
    pointwise_heads: bool = field(default=False, metadata={
        "help": "heads of a pointwise convolution each instead of a separable one: no depthwise convolution in them. "
                "The int8 network takes 0.85x the time, but trained by the shipped recipe it found 109 of 126 held-out "
                "signs against 115, at 0.89x the time a frame (centre score 0.3, chosen on its validation scenes)"})
    teacher: str | None = field(default=None, metadata={
        "help": "a locator file (or the shipped sign-locator-fp32, the float original of the int8 sign-locator) of the same "
                "downscale and stride to distil from: on every "
                "training crop the network also learns the teacher's centre scores and, where it sees a centre, its "
                "boxes, so a cheaper network can follow a good one. The width-48 hourglass distilled from the shipped locator found 109 "
                "of 126 held-out signs against 114, as many as without a teacher"})
    init_from: str | None = field(default=None, metadata={
        "help": "start from the weights of a float locator file (or the shipped sign-locator-fp32) of the same design, "
                "trained on the same --data, --seed and --val-fraction (so its validation scenes stay unseen); with a "
                "smaller --width (plain design), the channels that carry the most are kept and the rest cut "
                "(train/locator_init.py)"})
    distill_weight: float = field(default=0.5, metadata={"help": "with --teacher, the share of the loss that follows the teacher "
                                                                   "(the rest follows the true boxes)"})
    crops: int = field(default=7000, metadata={"help": "training crops built once from the scenes (and pasted signs)"})
    pasted_fraction: float = field(default=0.65, metadata={"help": "fraction of the crops with GTSRB signs pasted in"})
    paste_boost_classes: list[int] = field(default_factory=list, metadata={
        "help": "GTSRB class ids to paste --paste-boost times as often as their share of GTSRB's training images: classes the "
                "locator scores low (priority road, 12, scored a median 0.25 against 0.63 for other classes)"})
    paste_boost: float = field(default=3.0, metadata={"help": "how many times as often --paste-boost-classes are pasted"})
    paste_shapes: bool = field(default=False, metadata={
        "help": "paste each GTSRB sign inside its outline (circle, triangle, diamond, octagon) rather than the whole square "
                "around it, whose corners show GTSRB's street: a real priority-road diamond has sky or trees around it"})
    paste_max_side: int = field(default=128, metadata={
        "help": "largest pasted sign in frame pixels (sizes are spread evenly in log scale from 10): a sign held up to a "
                "webcam is larger than GTSDB's largest (about 130 px), and the locator's context reaches about 240 px"})
    scene_jitter: float = field(default=0.0, metadata={"help": "cut each crop from its scene mirrored at random and scaled by a "
                                                               "factor in [1/(1+J), 1+J]: more sizes and sides of the few real signs"})
    camera_conditions: float = field(default=0.0, metadata={
        "help": "chance that each training crop is darkened or over-exposed (light x0.35-1.7, clipped), blurred, "
                "given sensor noise, and JPEG-compressed (quality 20-90), each drawn on its own, as cameras other than "
                "GTSDB's daylight one would give the scene (train/augment.py, CameraConditions). With --teacher, the "
                "teacher reads the crop before them, so the network learns to see through them. The shipped locator "
                "fine-tuned with 0.35 for 6 epochs found 7 fewer of the 147 signs of scenes 00000-00099 as recorded and "
                "gained 4 at dusk, 2 at JPEG quality 30 and lost 2 under glare (docs/EXPERIMENTS.md); 0 turns them off"})
    crop_size: int = field(default=256, metadata={"help": "crop side in downscaled pixels"})
    epochs: int = field(default=16, metadata={"help": "training epochs"})
    batch_size: int = field(default=32, metadata={"help": "crops per training step"})
    learning_rate: float = field(default=2e-3, metadata={"help": "peak learning rate (Adam, cosine decay)"})
    size_weight: float = field(default=2.0, metadata={"help": "weight of the box offset and size loss against the centre loss"})
    val_fraction: float = field(default=0.2, metadata={"help": "fraction of the scenes held out to choose the operating point"})
    seed: int = field(default=0, metadata={"help": "seed for the scene split, the crops, initialization and shuffling"})
    resume: bool = field(default=False, metadata={"help": "continue the interrupted run in --run-dir from its last checkpoint"})
