"""What a risk officer reads: report tables, the HTML report, the Excel workbook, charts."""
