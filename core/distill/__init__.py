"""Knowledge distillation from the LM teacher into the student.

loss = alpha * CE(true next item) + (1 - alpha) * T^2 * KL(teacher_T || student_T)
[+ hidden_weight * (1 - cos(P s, t)) hidden-state alignment], the teacher frozen in eval mode,
its scores either computed every step or once into a top-k cache (core.distill.cache).
"""

from core.distill.cache import TeacherCache, build_teacher_cache
from core.distill.loss import DistillObjective, kl_full, kl_topk
from core.distill.teacher_states import teacher_states
from core.distill.text_map import TEXT_MAP_FILE, TextMap, fit_text_map, load_text_map

__all__ = [
    "TEXT_MAP_FILE",
    "DistillObjective",
    "TeacherCache",
    "TextMap",
    "build_teacher_cache",
    "fit_text_map",
    "kl_full",
    "kl_topk",
    "load_text_map",
    "teacher_states",
]
