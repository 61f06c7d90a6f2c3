"""One short paragraph per script the font chain covers: the gallery, the benchmark and the tests.

Each is ordinary text in its language (about DeepSeek-OCR reading documents), not a pangram;
``mixed`` puts right-to-left and left-to-right words and numbers on one line.
"""

from __future__ import annotations

SAMPLES: dict[str, str] = {
    "latin": "DeepSeek-OCR reads documents in about a hundred languages. Résumé, naïve, Ærøskøbing, Łódź.",
    "greek_cyrillic": "Το μοντέλο διαβάζει έγγραφα. Модель читает документы на многих языках.",
    "chinese_simplified": "这个模型可以阅读一百多种语言的文档，并把长篇文章压缩成简短的摘要。中文没有空格，所以换行发生在字与字之间。",  # noqa: E501 (one sample sentence per script)
    "chinese_traditional": "這個模型可以閱讀一百多種語言的文件，並把長篇文章壓縮成簡短的摘要。繁體中文同樣不使用空格。",
    "japanese": "このモデルは百以上の言語の文書を読み、長い記事を短い要約にまとめます。日本語には単語の間に空白がありません。",  # noqa: E501
    "korean": "이 모델은 백 개가 넘는 언어로 된 문서를 읽고 긴 글을 짧은 요약으로 정리합니다.",
    "arabic": "يقرأ هذا النموذج المستندات بأكثر من مئة لغة، ويلخص المقالات الطويلة في فقرات قصيرة.",
    "hebrew": "המודל קורא מסמכים ביותר ממאה שפות ומסכם מאמרים ארוכים לפסקאות קצרות.",
    "hindi": "यह मॉडल सौ से अधिक भाषाओं के दस्तावेज़ पढ़ता है और लंबे लेखों का संक्षिप्त सारांश बनाता है। क्षत्रिय, ज्ञान, श्रम।",
    "bengali": "এই মডেলটি একশোরও বেশি ভাষার নথি পড়ে এবং দীর্ঘ প্রবন্ধের সংক্ষিপ্ত সারাংশ তৈরি করে।",
    "tamil": "இந்த மாதிரி நூற்றுக்கும் மேற்பட்ட மொழிகளில் உள்ள ஆவணங்களைப் படிக்கிறது.",
    "telugu": "ఈ నమూనా వందకు పైగా భాషలలోని పత్రాలను చదువుతుంది.",
    "thai": "แบบจำลองนี้อ่านเอกสารได้มากกว่าหนึ่งร้อยภาษาและสรุปบทความยาวให้สั้นลง ภาษาไทยไม่เว้นวรรคระหว่างคำ",
    "khmer": "គំរូនេះអានឯកសារជាច្រើនភាសា ហើយសង្ខេបអត្ថបទវែងៗ។",
    "math_symbols": "∀ε>0 ∃δ>0: |x−a|<δ ⇒ |f(x)−f(a)|<ε; ∑ᵢ₌₁ⁿ i = n(n+1)/2; ∫₀^∞ e^(−x²) dx = √π/2; ℝ ⊂ ℂ; → ⇔ ⊕ ⊗ ∇ ∮ ★ ☐ ✓ ♠",  # noqa: E501
    "mixed": "The word שלום (shalom) and مرحبا (marhaba) both greet; version 2.5 ships in 2026.",
}
